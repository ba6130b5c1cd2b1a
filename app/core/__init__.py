"""Hearth's core: everything but the window. Never imports Qt."""
