"""Orchestrators: deterministic generators, no I/O."""

from .job import bp

__all__ = ["bp"]
