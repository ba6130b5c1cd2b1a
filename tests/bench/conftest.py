"""Benchmarks run only when asked: `python -m pytest tests/bench -s`."""
