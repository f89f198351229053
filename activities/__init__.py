"""Activities: validate the input, call the core, raise typed errors."""

from .stream import bp

__all__ = ["bp"]
