"""API layer: :class:`Memory`, views and node handles."""
