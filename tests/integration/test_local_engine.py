"""The real llama.cpp engine on the bundled model: no mocks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.core.errors import ContextOverflowError, GenerationError
from app.core.llm.local import LocalModelConfig, LocalProvider
from app.core.llm.provider import (
    CancelToken,
    ChatMessage,
    ChatRequest,
    Provider,
    StreamEnd,
    TextDelta,
)

pytestmark = pytest.mark.slow

QUESTION = (ChatMessage("system", "You are helpful."),
            ChatMessage("user", "Name three colours."))


def _collect(provider: LocalProvider, request: ChatRequest, cancel: CancelToken | None = None):
    items = list(provider.stream(request, cancel or CancelToken()))
    deltas = [i.text for i in items if isinstance(i, TextDelta)]
    ends = [i for i in items if isinstance(i, StreamEnd)]
    assert len(ends) == 1 and items[-1] is ends[0]
    return "".join(deltas), ends[0], len(deltas)


def test_implements_the_provider_protocol(engine: LocalProvider) -> None:
    assert isinstance(engine, Provider)
    caps = engine.capabilities()
    assert caps.local and caps.max_context == 4096 and not caps.vision


def test_streaming_produces_text_in_several_pieces(engine: LocalProvider) -> None:
    text, end, pieces = _collect(engine, ChatRequest(QUESTION, max_tokens=40, temperature=0))
    assert text.strip()
    assert pieces > 3
    assert end.prompt_tokens > 10
    assert 1 <= end.completion_tokens <= 40
    assert end.finish_reason in ("stop", "length")


def test_chat_template_comes_from_the_gguf_metadata(engine: LocalProvider,
                                                   model_path: Path) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from app.core.models.files import read_metadata

    template = read_metadata(model_path).chat_template
    assert template
    expected = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        template).render(messages=[{"role": m.role, "content": m.content} for m in QUESTION],
                         add_generation_prompt=True, eos_token="<|im_end|>", bos_token="")
    prompt = engine.format_prompt(QUESTION)
    assert prompt == expected
    assert prompt.startswith("<|im_start|>system\nYou are helpful.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert engine.loaded is not None and engine.loaded.template_from_model
    # the prompt really sent is that template's tokens
    _, end, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=2))
    assert end.prompt_tokens == engine.count_tokens(QUESTION)


def test_same_seed_same_answer(engine: LocalProvider) -> None:
    req = ChatRequest(QUESTION, max_tokens=24, temperature=0.8, seed=1234)
    assert _collect(engine, req)[0] == _collect(engine, req)[0]


def test_stop_strings_end_the_answer(engine: LocalProvider) -> None:
    free, _, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=40, temperature=0))
    word = free.split()[1]
    text, end, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=40, temperature=0,
                                                stop=(word,)))
    assert word not in text and free.startswith(text)
    assert end.finish_reason == "stop"


def test_cancel_mid_generation_stops_within_a_second(engine: LocalProvider) -> None:
    cancel = CancelToken()
    stream = engine.stream(ChatRequest(QUESTION, max_tokens=2000, temperature=1.0,
                                       stop=()), cancel)
    got = 0
    for item in stream:
        if isinstance(item, TextDelta):
            got += 1
            if got == 5:
                cancel.cancel()
                cancelled_at = time.perf_counter()
        elif isinstance(item, StreamEnd):
            stopped = time.perf_counter() - cancelled_at
            assert item.finish_reason == "cancelled"
            assert item.completion_tokens < 2000
    assert stopped < 1.0
    # the engine is free for the next request straight away
    text, _, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=8))
    assert text


def test_cancel_during_a_long_prompt_evaluation(engine: LocalProvider) -> None:
    """A ~3,500-token prompt takes many seconds on 2 cores; the abort callback
    makes llama_decode return as soon as the cancel comes."""
    long = (ChatMessage("user", "lorem ipsum dolor sit amet " * 340),)
    assert engine.count_tokens(long) > 3000
    cancel = CancelToken()
    timer = threading.Timer(0.5, cancel.cancel)
    started = time.perf_counter()
    timer.start()
    text, end, _ = _collect(engine, ChatRequest(long, max_tokens=50), cancel)
    elapsed = time.perf_counter() - started
    timer.join()
    assert end.finish_reason == "cancelled" and end.completion_tokens == 0 and text == ""
    assert elapsed < 1.5  # cancelled at 0.5 s, stopped within 1 s of it
    # the interrupted prompt left the context consistent
    text, end, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=8))
    assert text and end.finish_reason in ("stop", "length")


def test_closing_the_stream_early_cancels(engine: LocalProvider) -> None:
    cancel = CancelToken()
    stream = engine.stream(ChatRequest(QUESTION, max_tokens=500, temperature=1.0), cancel)
    next(stream)
    stream.close()
    assert cancel.cancelled
    text, _, _ = _collect(engine, ChatRequest(QUESTION, max_tokens=4))
    assert text


def test_prompt_longer_than_the_context(model_path: Path) -> None:
    with LocalProvider(LocalModelConfig(path=model_path, context_size=512)) as small:
        long = (ChatMessage("user", "hello there " * 400),)
        with pytest.raises(ContextOverflowError, match="context holds 512") as err:
            _collect(small, ChatRequest(long, max_tokens=10))
        assert err.value.prompt_tokens > 512
        # an answer that would overrun is cut to the room left, and says so
        mid = (ChatMessage("user", "hello there " * 200),)
        _, end, _ = _collect(small, ChatRequest(mid, max_tokens=4000, temperature=1.0))
        assert end.prompt_tokens + end.completion_tokens <= 512
        assert any("context window" in n for n in end.notes)


def test_requests_from_many_threads_are_served_one_at_a_time(engine: LocalProvider) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(_collect(engine, ChatRequest(QUESTION, max_tokens=6))[0])
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 4 and all(results)


def test_close_frees_the_model_and_refuses_new_work(model_path: Path) -> None:
    provider = LocalProvider(LocalModelConfig(path=model_path, context_size=512))
    provider.load()
    owner = [t for t in threading.enumerate() if t.name == "hearth-llama"]
    provider.close()
    assert all(not t.is_alive() for t in owner if t is provider._thread)
    with pytest.raises(GenerationError, match="unloaded"):
        provider.load()


def test_close_during_an_answer_ends_it_and_later_requests_fail_clearly(
        model_path: Path) -> None:
    provider = LocalProvider(LocalModelConfig(path=model_path, context_size=512))
    provider.load()
    running = provider.stream(ChatRequest(QUESTION, max_tokens=400, temperature=1.0),
                              CancelToken())
    next(running)  # generating on the owner thread
    closer = threading.Thread(target=provider.close)
    closer.start()
    leftovers = list(running)  # cancelled by close(), ends cleanly
    closer.join(10)
    assert not closer.is_alive()
    assert isinstance(leftovers[-1], StreamEnd) and leftovers[-1].finish_reason == "cancelled"
    with pytest.raises(GenerationError, match="unloaded"):
        next(provider.stream(ChatRequest(QUESTION, max_tokens=4), CancelToken()))


def test_two_engines_loading_at_once_do_not_crash(model_path: Path) -> None:
    """llama.cpp model loading is not thread-safe; engines serialise their loads."""
    providers = [LocalProvider(LocalModelConfig(path=model_path, context_size=256))
                 for _ in range(3)]
    loaders = [threading.Thread(target=p.load) for p in providers]
    for t in loaders:
        t.start()
    for t in loaders:
        t.join(60)
    try:
        assert all(p.loaded is not None for p in providers)
    finally:
        for p in providers:
            p.close()
