"""ALMS molecule side: molecules -> node-neighbour images, quantum-chemistry labels, polarity data, screening."""
