"""Markdown to the HTML subset Qt's rich text understands (markdown-it-py):
headings, lists, tables, links, and code blocks in a monospace box with a
Copy link. Raw HTML in an answer is shown as text, never interpreted."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Links with this scheme copy code block N (see ChatView's anchor handling).
COPY_SCHEME = "hearth-copy"
MONO = '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace'


@dataclass
class Rendered:
    html: str
    code_blocks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Colors:
    code_bg: str = "#f2f2f2"
    code_border: str = "#dddddd"
    muted: str = "#777777"
    link: str = "#2a6ad3"


def _fence(_renderer: Any, tokens: Sequence[Token], idx: int, _options: Any,
           env: dict[str, Any]) -> str:
    token = tokens[idx]
    code = token.content.rstrip("\n")
    blocks: list[str] = env["blocks"]
    number = len(blocks)
    blocks.append(code)
    c: Colors = env["colors"]
    lang = html.escape(token.info.split()[0]) if token.info.strip() else "code"
    return (
        f"<table width='100%' cellspacing='0' cellpadding='8' "
        f"style='background-color:{c.code_bg}; border: 1px solid {c.code_border}; "
        f"margin-top:4px; margin-bottom:8px'>"
        f"<tr><td><span style='color:{c.muted}; font-size:small'>{lang}</span>"
        f"&nbsp;&nbsp;<a href='{COPY_SCHEME}:{number}' style='font-size:small'>Copy</a>"
        # A <pre> never wraps in Qt's rich text; a div with pre-wrap does, so
        # long lines stay readable in a narrow window.
        f"<div style='font-family:{MONO}; white-space:pre-wrap; margin:0'>"
        f"{html.escape(code)}</div></td></tr></table>\n"
    )


def _code_inline(_renderer: Any, tokens: Sequence[Token], idx: int, _options: Any,
                 env: dict[str, Any]) -> str:
    c: Colors = env["colors"]
    return (f"<code style='font-family:{MONO}; background-color:{c.code_bg}'>"
            f"{html.escape(tokens[idx].content)}</code>")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("table")
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("code_inline", _code_inline)
    return md


_md: MarkdownIt | None = None


def render_markdown(text: str, colors: Colors | None = None) -> Rendered:
    """HTML for `text` plus the raw text of each code block, by number."""
    global _md
    if _md is None:
        _md = _parser()
    env: dict[str, Any] = {"blocks": [], "colors": colors or Colors()}
    body = _md.render(text, env)
    return Rendered(body, env["blocks"])


def plain_html(text: str) -> str:
    """Text shown exactly as typed (questions are not Markdown-rendered)."""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"
