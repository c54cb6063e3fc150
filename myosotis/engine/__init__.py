"""Engine layer: graph state, commits, checkpoints, replay, views and diffs."""
