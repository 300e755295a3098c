"""Dramatiq actors and worker-side middleware; started with ``dramatiq actors.worker``."""
