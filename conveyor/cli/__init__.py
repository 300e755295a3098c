"""The ``conveyor`` command (also ``python -m conveyor``): see ``conveyor --help``."""

from conveyor.cli.commands import main

__all__ = ["main"]
