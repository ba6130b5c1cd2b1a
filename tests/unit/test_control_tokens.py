"""Escaping control tokens, for the vocabularies of several template families."""

from __future__ import annotations

import pytest

from app.core.llm.control_tokens import BREAK, ControlTokens

VOCABULARIES = {
    "llama3": ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
               *(f"<|reserved_special_token_{i}|>" for i in range(250))],
    "gemma": ["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>"],
    "mistral": ["<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]"],
    "chatml": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
}


@pytest.mark.parametrize("family", sorted(VOCABULARIES))
def test_every_control_token_is_broken_and_stays_readable(family: str) -> None:
    vocab = VOCABULARIES[family]
    controls = ControlTokens(vocab)
    text = "before " + " and ".join(vocab) + " after" + "".join(vocab)
    escaped = controls.escape(text)
    assert controls.count(escaped) == 0
    assert escaped.replace(BREAK, "") == text  # nothing lost, only broken up


def test_plain_text_is_returned_untouched() -> None:
    controls = ControlTokens(VOCABULARIES["llama3"])
    text = "Ordinary <b>HTML</b> and [links] and a|pipe."
    assert controls.escape(text) is text


def test_user_defined_tokens_only_when_shaped_like_markup() -> None:
    controls = ControlTokens(["<|im_start|>"], user_defined=["<tool_call>", "hello", "[x]"])
    assert set(controls.texts) == {"<|im_start|>", "<tool_call>", "[x]"}
    assert controls.escape("hello") == "hello"
