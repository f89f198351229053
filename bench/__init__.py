"""Benchmarks run by `make bench` (`python -m bench [name ...]`); each writes docs/<name>.md."""

__all__: list[str] = []
