"""Storage layer: the file, its map, the writer lock, appends and recovery."""
