"""Keeping inserted text (file passages, questions, earlier answers) from
becoming a model's control tokens.

A chat template's own markup (`<|im_start|>`, `<|eot_id|>`, `<start_of_turn>`,
`[INST]`…) is tokenised with special tokens on; text placed inside it is
tokenised with them off, and before that every control token of the loaded
model's vocabulary that appears in it is broken with a zero-width space, so
that neither llama.cpp nor a later re-tokenisation can read it as markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Inserted after a control token's first character: invisible when shown,
# and no vocabulary's control token contains it.
BREAK = "\u200b"
# User-defined tokens are matched by llama.cpp even with special tokens off;
# only those shaped like markup are escaped (others are ordinary words).
_MARKUP = re.compile(r"^[<\[].+[>\]]$", re.S)


class ControlTokens:
    """The control-token texts of one vocabulary, and `escape()` for text
    that must stay data."""

    def __init__(self, control: Iterable[str], user_defined: Iterable[str] = ()) -> None:
        texts = {t for t in control if len(t.strip()) >= 2}
        texts |= {t for t in user_defined if _MARKUP.match(t)}
        self.texts = tuple(sorted(texts, key=lambda t: (-len(t), t)))
        self._first = frozenset(t[0] for t in self.texts)
        self._pattern = (re.compile("|".join(re.escape(t) for t in self.texts))
                         if self.texts else None)

    def escape(self, text: str) -> str:
        """`text` with every control token broken; text without any is returned as is."""
        pattern = self._pattern
        if pattern is None or not any(c in text for c in self._first):
            return text
        # Breaking one token can never form another (BREAK is in none of
        # them), but a second pass proves it at no cost when nothing is left.
        for _ in range(4):
            text, n = pattern.subn(lambda m: m.group(0)[0] + BREAK + m.group(0)[1:], text)
            if n == 0:
                break
        return text

    def count(self, text: str) -> int:
        """How many control tokens `text` holds (for tests and diagnostics)."""
        return 0 if self._pattern is None else len(self._pattern.findall(text))
