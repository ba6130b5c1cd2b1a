"""`hearth providers ...` and `hearth keys ...`: set up remote providers and
their API keys (keys go to the OS keyring, never to a file or the screen)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli_common import fail


def add_parsers(sub: Any) -> None:
    prov = sub.add_parser("providers", help="remote providers Hearth may fall back to")
    psub = prov.add_subparsers(dest="action", required=True, parser_class=type(prov))
    add = psub.add_parser("add", help="add a provider at the end of the fallback chain")
    add.add_argument("name")
    add.add_argument("--kind", required=True, choices=("openai", "anthropic"),
                     help="openai: any OpenAI-compatible API; anthropic: the Messages API")
    add.add_argument("--base-url", required=True, metavar="URL",
                     help="e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1")
    add.add_argument("--model", required=True, metavar="M")
    add.add_argument("--header", action="append", default=[], metavar="K=V",
                     help="extra HTTP header sent with every request (repeatable)")
    add.add_argument("--timeout", type=float, default=30.0, metavar="S",
                     help="seconds to wait for the first token before moving on")
    add.add_argument("--heavy", action="store_true",
                     help="use this provider first for heavy or --deep questions")
    lst = psub.add_parser("list", help="configured providers, in fallback order")
    lst.add_argument("--json", action="store_true")
    rm = psub.add_parser("remove", help="remove a provider")
    rm.add_argument("name")
    test = psub.add_parser("test", help="send a tiny request and report how it went")
    test.add_argument("name")
    test.add_argument("--json", action="store_true")

    keys = sub.add_parser("keys", help="API keys in the OS keyring")
    ksub = keys.add_subparsers(dest="action", required=True, parser_class=type(keys))
    kset = ksub.add_parser("set", help="store a provider's key (typed without echo)")
    kset.add_argument("name")
    kdel = ksub.add_parser("delete", help="forget a provider's key")
    kdel.add_argument("name")


def cmd_providers(args: argparse.Namespace) -> int:
    from app.core import secrets
    from app.core.errors import HearthError
    from app.core.llm import registry
    from app.paths import get_paths

    paths = get_paths()
    try:
        if args.action == "add":
            headers = {}
            for pair in args.header:
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    return fail(f"--header wants KEY=VALUE; got {pair!r}.", 2)
                headers[key.strip()] = value.strip()
            config = registry.ProviderConfig(
                args.name, args.kind, args.base_url.rstrip("/"), args.model, headers,
                timeout_s=args.timeout, heavy=args.heavy)
            registry.add_provider(paths, config)
            hint = ""
            if secrets.key_source(args.name) == "none":
                hint = (f"; if it needs a key, run `hearth keys set {args.name}` "
                        f"(or set {secrets.env_var(args.name)})")
            print(f"added {args.name} ({args.kind}, {config.model} at {config.base_url}){hint}")
        elif args.action == "list":
            rows = []
            for p in registry.load_providers(paths):
                rows.append({"name": p.name, "kind": p.kind, "base_url": p.base_url,
                             "model": p.model, "headers": sorted(p.headers),
                             "timeout_s": p.timeout_s, "heavy": p.heavy,
                             "key": secrets.key_source(p.name)})
            if args.json:
                print(json.dumps(rows, indent=2))
            elif not rows:
                print("No remote providers; add one with `hearth providers add`.")
            else:
                for r in rows:
                    heavy = ", heavy" if r["heavy"] else ""
                    print(f"{r['name']:<14} {r['kind']:<9} {r['model']} at {r['base_url']} "
                          f"(key: {r['key']}{heavy})")
        elif args.action == "remove":
            registry.remove_provider(paths, args.name)
            print(f"removed {args.name}")
        elif args.action == "test":
            return _test(args, paths)
    except HearthError as exc:
        return fail(str(exc))
    return 0


def _test(args: argparse.Namespace, paths: Any) -> int:
    from app.core.llm.probe import probe_provider
    from app.settings import Settings

    result = probe_provider(Settings.load(paths), paths, args.name)
    if not result.ok:
        if args.json:
            print(json.dumps({"ok": False, "error": result.error, "reason": result.reason,
                              "status": result.status}))
        return fail(result.message)
    if args.json:
        print(json.dumps({"ok": True, "provider": result.provider, "model": result.model,
                          "ttft_s": result.ttft_s, "total_s": round(result.total_s, 3),
                          "reply": result.reply}, indent=2))
    else:
        print(result.message.rstrip("."))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from app.core import secrets
    from app.core.errors import HearthError

    try:
        if args.action == "set":
            if sys.stdin is not None and sys.stdin.isatty():
                import getpass

                key = getpass.getpass(f"API key for {args.name} (not shown): ")
            else:
                key = sys.stdin.readline() if sys.stdin is not None else ""
            secrets.set_key(args.name, key)
            print(f"stored the key for {args.name} in the keyring")
        elif args.action == "delete":
            if secrets.delete_key(args.name):
                print(f"deleted the key for {args.name}")
            else:
                print(f"there was no stored key for {args.name}")
    except HearthError as exc:
        return fail(str(exc))
    return 0


HANDLERS = {"providers": cmd_providers, "keys": cmd_keys}
