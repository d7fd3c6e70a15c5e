"""Metal-organic frameworks: CIF -> periodic atom-bond graph -> node-neighbour image."""
