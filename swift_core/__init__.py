"""Swift: a thin core of pluggy hook specifications; every capability is a plugin.

This module stays import-light on purpose: `swift --help` and every plugin module import it,
so nothing heavy (torch, transformers) may be imported at this level.
"""

from swift_core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
