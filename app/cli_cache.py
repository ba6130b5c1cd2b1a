"""`hearth cache status` and `hearth cache clear`: the semantic answer cache
in the conversation database (the conversations keep their answers)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli_common import EXIT_FAIL, EXIT_OK


def add_parsers(sub: Any) -> None:
    cache = sub.add_parser(
        "cache", help="the answer cache: earlier answers given again to close questions",
        description="A question close enough to an earlier one (cache.min_similarity), over "
                    "the same files, model, prompt and route, gets the earlier answer at once. "
                    "`hearth ask --fresh` answers anew; cache.enabled turns it off.")
    csub = cache.add_subparsers(dest="action", required=True)
    status = csub.add_parser("status", help="how many answers are kept and how often served")
    status.add_argument("--json", action="store_true")
    csub.add_parser("clear", help="forget every cached answer (conversations are kept)")


def cmd_cache(args: argparse.Namespace) -> int:
    from app.core.answer_cache import EMPTY_CLEAR, Status, clear_store, status_of
    from app.core.conversations import ConversationStore
    from app.paths import DataDirError, get_paths

    paths = get_paths()
    if not paths.conversations_db.exists():
        # Nothing was ever asked: no database is created just to say so.
        empty = Status(0, 0, None)
        if args.action == "clear":
            print(EMPTY_CLEAR)
        elif args.json:
            print(json.dumps(_as_json(empty)))
        else:
            print(empty.as_text())
        return EXIT_OK
    try:
        store = ConversationStore(paths.conversations_db)
    except DataDirError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return EXIT_FAIL
    try:
        if args.action == "clear":
            n = clear_store(store)
            print(f"Cleared {n} cached answer{'s' if n != 1 else ''}; the conversations keep "
                  "them." if n else EMPTY_CLEAR)
            return EXIT_OK
        status = status_of(store)
    finally:
        store.close()
    print(json.dumps(_as_json(status)) if args.json else status.as_text())
    return EXIT_OK


def _as_json(status: Any) -> dict[str, Any]:
    return {"entries": status.entries, "hits": status.hits, "newest": status.newest}


HANDLERS = {"cache": cmd_cache}
