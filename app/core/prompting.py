"""What is sent to a model, before it is rendered into chat messages.

A `PromptPlan` keeps the parts apart (instructions, history, reference text,
question) so that each consumer can decide what to keep: the context fitter
drops old turns, the privacy gate drops local-only chunks before anything
leaves the machine, and `render()` builds the final messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from app.core.events import Source
from app.core.llm.provider import ChatMessage
from app.core.prompts import Prompt, load_prompt


@dataclass(frozen=True)
class ContextChunk:
    """One retrieved piece of the user's files, cited as [number]."""

    number: int
    path: str
    text: str
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    score: float | None = None
    # From a folder marked local-only: never sent to a remote provider, and
    # an answer built from it is marked local-only in the conversation.
    local_only: bool = False
    # How the retriever found it (for the answer's trace): cosine, BM25, and
    # its place in the fused order (1 = best).
    vector_score: float | None = None
    keyword_score: float | None = None
    rank: int | None = None

    def location(self) -> str:
        where = self.path
        if self.page is not None:
            where += f", page {self.page}"
        if self.start_line is not None:
            where += f", lines {self.start_line}-{self.end_line or self.start_line}"
        return where

    def source(self, snippet_chars: int = 240) -> Source:
        snippet = " ".join(self.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1] + "…"
        return Source(self.number, self.path, self.start_line, self.end_line, self.page,
                      snippet, self.score)


@dataclass(frozen=True)
class PromptPlan:
    system: str
    history: tuple[ChatMessage, ...]
    question: str
    context: tuple[ContextChunk, ...] = ()
    # How the system text and the passages are framed (a versioned prompt).
    prompt: Prompt = field(default_factory=load_prompt)

    def render(self) -> tuple[ChatMessage, ...]:
        p = self.prompt
        system = self.system
        if self.context:
            system = f"{system}\n\n{p.reference_rules}" if system else p.reference_rules
        head = (ChatMessage("system", system),) if system else ()
        question = self.question
        if self.context:
            passages = "\n\n".join(
                p.passage.format(number=c.number, source=_attr(c.location()),
                                 text=_quoted(c.text, p.quote, p.fence))
                for c in self.context
            )
            question = p.question.format(passages=passages, question=self.question)
        history = tuple(ChatMessage(m.role, m.content) for m in self.history)
        return (*head, *history, ChatMessage("user", question))

    @property
    def local_only(self) -> bool:
        """Whether any part of this prompt comes from a local-only folder."""
        return any(c.local_only for c in self.context) or any(
            m.local_only for m in self.history)

    def without_history(self, dropped: int) -> PromptPlan:
        return replace(self, history=self.history[dropped:])

    def with_context(self, context: tuple[ContextChunk, ...]) -> PromptPlan:
        return replace(self, context=context)


def _attr(text: str) -> str:
    text = " ".join(text.split())
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _quoted(text: str, quote: str, fence: str = "") -> str:
    """The passage as data: unable to close its own delimiter (the tags of
    the first format, or the prompt's `fence`), and each line prefixed by
    `quote` where the prompt quotes line by line."""
    text = text.replace("</reference", "&lt;/reference").replace("<reference", "&lt;reference")
    if fence:
        text = text.replace(fence, fence[0] + "\u200b" + fence[1:])
    if not quote:
        return text
    return "\n".join(quote + line for line in text.strip("\n").split("\n"))
