"""Deep AndersoNN."""
