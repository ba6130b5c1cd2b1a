"""`hearth trace` and `hearth stats`: one answer's trace, and the figures
across answers, from the local conversation store."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli_common import EXIT_OK, EXIT_USAGE, fail


def add_parsers(sub: Any) -> None:
    tr = sub.add_parser(
        "trace", help="how one answer was made: prompt, route, timings, passages",
        description="Print an answer's trace: the prompt and its version, every provider "
                    "tried with its timings, tokens and cost, the passages retrieved with "
                    "their scores and whether the answer cited them, cache, redactions.")
    tr.add_argument("message", nargs="?", default="last", metavar="MESSAGE_ID|last",
                    help="the answer's message id (or a unique start of it); default: last")
    tr.add_argument("--json", action="store_true", help="print the trace as JSON")
    st = sub.add_parser(
        "stats", help="figures across answers: models, fallbacks, speed, tokens, cost",
        description="Answers per provider and model, fallback rate and reasons, first-token "
                    "time and tokens/s (p50/p95) per model, tokens and cost per provider, "
                    "cache hit rate, how often answers cite a file, and the index.")
    st.add_argument("--since", metavar="SPAN|DATE",
                    help="only answers from this far back (7d, 24h, 30m, 2w) or this date "
                         "(2025-01-31)")
    st.add_argument("--json", action="store_true", help="print the figures as JSON")


def cmd_trace(args: argparse.Namespace) -> int:
    from app.core import trace
    from app.core.conversations import ConversationStore
    from app.core.errors import HearthError
    from app.paths import DataDirError, get_paths

    paths = get_paths()
    if not paths.conversations_db.exists():
        return fail("There are no answers yet; ask something first.")
    try:
        store = ConversationStore(paths.conversations_db)
    except DataDirError as exc:
        return fail(str(exc))
    try:
        msg = store.answer(args.message)
    except HearthError as exc:
        return fail(str(exc))
    finally:
        store.close()
    t = trace.from_message(msg)
    if args.json:
        print(json.dumps({"message_id": msg.id, "conversation_id": msg.conversation_id,
                          "created_at": msg.created_at, **t.to_dict()},
                         ensure_ascii=False, indent=2))
    else:
        print(trace.as_text(t, msg.id))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace) -> int:
    from app.core import stats
    from app.paths import get_paths

    try:
        since = stats.parse_since(args.since) if args.since else None
    except stats.StatsError as exc:
        return fail(str(exc), EXIT_USAGE)
    data = stats.collect(get_paths(), since)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(stats.as_text(data))
    return EXIT_OK


HANDLERS = {"trace": cmd_trace, "stats": cmd_stats}
