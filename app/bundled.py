"""Files shipped inside the `app` package (catalog, prices, prompts, icons,
desktop entry), found with importlib.resources so that a wheel, a zip or a
frozen bundle finds them wherever it is installed."""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable


def resource(name: str) -> Traversable:
    """`app/resources/<name>`; `name` may hold '/' for sub-folders."""
    return resources.files("app").joinpath("resources", *name.split("/"))
