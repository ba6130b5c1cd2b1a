"""Hearth: a local-first desktop AI copilot."""

__version__ = "0.1.0"
