"""Prompts as versioned data: the system text and the way reference passages
are framed live in `app/resources/prompts/ID@VERSION.toml`, so each answer can
record exactly which prompt produced it (`Prompt.ref`).

`load_prompt("hearth-answer@2")` loads one; `load_prompt()` the default (the
highest version of `DEFAULT_ID`). A prompt, once released, is never edited: a
change is a new version.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from importlib import resources

from app.core.errors import HearthError

DEFAULT_ID = "hearth-answer"
_REF = re.compile(r"^(?P<id>[a-z0-9][a-z0-9_.-]*)(?:@(?P<version>\d+))?$")
_FIELDS = ("system", "reference_rules", "passage", "question")


class PromptError(HearthError):
    reason = "invalid_request"


@dataclass(frozen=True)
class Prompt:
    """One released prompt. `passage` is filled with {number}, {source} and
    {text} (each line of the passage prefixed by `quote`, any `fence` in it
    broken up); `question` with {passages} and {question}."""

    id: str
    version: int
    system: str
    reference_rules: str
    passage: str
    question: str
    quote: str = ""
    # The passage's closing delimiter, if any: broken up wherever it appears
    # inside a passage, so file text cannot close it early.
    fence: str = ""
    description: str = ""

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


def _folder() -> resources.abc.Traversable:
    return resources.files("app") / "resources" / "prompts"


@functools.cache
def _all() -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for entry in _folder().iterdir():
        if not entry.name.endswith(".toml"):
            continue
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        missing = [k for k in ("id", "version", *_FIELDS) if k not in data]
        if missing:
            raise PromptError(f"The prompt file {entry.name} lacks {', '.join(missing)}.")
        prompt = Prompt(
            id=str(data["id"]), version=int(data["version"]),
            **{k: str(data[k]).strip("\n") for k in _FIELDS},
            quote=str(data.get("quote", "")), fence=str(data.get("fence", "")),
            description=str(data.get("description", "")),
        )
        if entry.name != f"{prompt.ref}.toml":
            raise PromptError(f"The prompt file {entry.name} declares {prompt.ref}; "
                              "its name must match.")
        prompts[prompt.ref] = prompt
    return prompts


def available() -> list[str]:
    """Every released prompt's ref, sorted by id then version."""
    return sorted(_all(), key=lambda r: (r.split("@")[0], int(r.split("@")[1])))


def load_prompt(ref: str | None = None) -> Prompt:
    """The prompt `ref` ("ID@VERSION", or "ID" for its newest version), or the
    default one when `ref` is None or empty. Unknown refs raise PromptError
    naming the ones that exist."""
    prompts = _all()
    ref = (ref or DEFAULT_ID).strip()
    match = _REF.match(ref)
    if match and match["version"] is None:
        versions = [p for p in prompts.values() if p.id == match["id"]]
        if versions:
            return max(versions, key=lambda p: p.version)
    elif match and ref in prompts:
        return prompts[ref]
    raise PromptError(f"There is no prompt {ref!r}; available: {', '.join(available())}.")
