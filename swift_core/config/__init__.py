"""Arguments for every command: dataclasses, config files and aliases."""

from swift_core.config.arguments import arg, format_help, parse_arguments

__all__ = ["arg", "format_help", "parse_arguments"]
