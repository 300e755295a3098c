"""The directory watcher service: ``python -m watcher`` (see :mod:`watcher.service`)."""
