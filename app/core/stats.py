"""Local statistics across answers (`hearth stats`, the Statistics view): who
answered, how often the local model needed the fallback and why, how fast
each model is, what tokens and remote answers cost, how often answers cite
the user's files, and what the index holds. SQL over the conversation store
and the index manifest, read-only; nothing leaves the machine."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core import trace as tr
from app.paths import Paths

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Files left out are grouped by their reason, without the per-file detail in
# brackets ("the PDF is damaged or unreadable (…)").
_DETAIL = re.compile(r"\s*\(.*\)\s*$")


class StatsError(ValueError):
    """A bad --since; the message is one sentence."""


def parse_since(text: str, now: float | None = None) -> float:
    """"7d", "24h", "30m", "2w" back from now, or a date "2025-01-31" (local
    midnight): the epoch seconds from which answers are counted."""
    now = time.time() if now is None else now
    m = _SINCE.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2).lower()]
    try:
        return dt.datetime.combine(dt.date.fromisoformat(text.strip()), dt.time()).timestamp()
    except ValueError:
        raise StatsError(f"--since must be a span like 7d, 24h, 30m or 2w, or a date like "
                         f"2025-01-31; got {text!r}.") from None


def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank percentile (a value that occurred, never an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class _Row:
    id: str
    created_at: float
    status: str
    provider: str
    model: str
    ttft_s: float | None
    tokens_per_s: float | None
    content: str
    route: dict[str, Any]
    sources: list[Any]
    trace: dict[str, Any] | None


def collect(paths: Paths, since: float | None = None) -> dict[str, Any]:
    """Every figure, as JSON-ready data. `message` is one sentence when there
    is nothing to count (no answers, or none since `since`)."""
    rows = _answers(paths.conversations_db, since)
    out: dict[str, Any] = {
        "since": since, "answers": len(rows), "message": None,
        "by_model": [], "fallback": {"answers": 0, "rate": None, "reasons": {}},
        "tokens": {"by_provider": [], "by_day": [], "total": _tokens()},
        "cache": {"lookups": 0, "hits": 0, "hit_rate": None},
        "citations": {"answers": 0, "with_files": 0, "citing": 0, "share": None},
        "index": index_stats(paths),
    }
    if not rows:
        when = "" if since is None else " since " + dt.datetime.fromtimestamp(since).strftime(
            "%Y-%m-%d %H:%M")
        out["message"] = f"No answers yet{when}; ask something first, then look again."
        return out
    out["by_model"] = _by_model(rows)
    out["fallback"] = _fallbacks(rows)
    out["tokens"] = _token_totals(paths.conversations_db, since)
    out["cache"] = _cache(rows)
    out["citations"] = _citations(rows)
    out["legacy_answers"] = sum(1 for r in rows if r.trace is None)
    return out


def _connect(db: Path) -> sqlite3.Connection | None:
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    con.row_factory = sqlite3.Row
    return con


def _answers(db: Path, since: float | None) -> list[_Row]:
    con = _connect(db)
    if con is None:
        return []
    try:
        columns = {r[1] for r in con.execute("PRAGMA table_info(messages)")}
        if not columns:
            return []
        # A store an older Hearth wrote, and this one has not opened yet,
        # has no trace column: its answers count without traces.
        trace_col = "trace_json" if "trace_json" in columns else "NULL AS trace_json"
        result = con.execute(
            f"SELECT id, created_at, status, provider, model, ttft_s, tokens_per_s, content, "
            f"route_json, sources_json, {trace_col} FROM messages "
            f"WHERE role = 'assistant' AND created_at >= ? ORDER BY created_at",
            (since if since is not None else float("-inf"),)).fetchall()
    finally:
        con.close()
    return [_Row(r["id"], r["created_at"], r["status"], r["provider"] or "local",
                 r["model"] or "unknown", r["ttft_s"], r["tokens_per_s"], r["content"] or "",
                 _obj(r["route_json"]) or {}, _obj(r["sources_json"]) or [],
                 _obj(r["trace_json"]))
            for r in result]


def _obj(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _by_model(rows: list[_Row]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[_Row]] = {}
    for r in rows:
        groups.setdefault((r.provider, r.model), []).append(r)
    out = []
    for (provider, model), rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        ok = [r for r in rs if r.status == "complete"]
        ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
        tps = [r.tokens_per_s for r in ok if r.tokens_per_s is not None]
        out.append({
            "provider": provider, "model": model, "answers": len(rs),
            "failed": sum(1 for r in rs if r.status == "error"),
            "ttft_p50_s": percentile(ttft, 50), "ttft_p95_s": percentile(ttft, 95),
            "tokens_per_s_p50": percentile(tps, 50), "tokens_per_s_p95": percentile(tps, 95),
        })
    return out


def _fallbacks(rows: list[_Row]) -> dict[str, Any]:
    routed = [r for r in rows if r.route.get("attempts")]
    reasons: Counter[str] = Counter()
    for r in routed:
        attempts = [_attempt(a) for a in r.route["attempts"] if isinstance(a, dict)]
        why = tr.fallback_reason(attempts)
        if why is not None:
            reasons[why] += 1
    n = sum(reasons.values())
    return {"answers": n, "routed": len(routed),
            "rate": n / len(routed) if routed else None, "reasons": dict(reasons.most_common())}


def _attempt(a: dict[str, Any]) -> Any:
    from app.core.events import Attempt

    known = {k: v for k, v in a.items() if k in Attempt.__dataclass_fields__}
    known.setdefault("provider", "?")
    known.setdefault("model", "?")
    known.setdefault("started_s", 0.0)
    known.setdefault("first_token_s", None)
    known.setdefault("ended_s", 0.0)
    known.setdefault("outcome", "?")
    return Attempt(**known)


def _tokens(prompt: int = 0, completion: int = 0, cost: float | None = None
            ) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}


def _token_totals(db: Path, since: float | None) -> dict[str, Any]:
    """Tokens and cost by the provider of each attempt (a remote attempt that
    failed mid-answer was paid for too), per local day and in all. Answers
    with no route record count by their message's own columns."""
    con = _connect(db)
    assert con is not None
    start = since if since is not None else float("-inf")
    try:
        rows = con.execute(
            """
            SELECT day, provider, SUM(pt) AS pt, SUM(ct) AS ct, SUM(cost) AS cost,
                   COUNT(cost) AS priced
            FROM (
                SELECT date(m.created_at, 'unixepoch', 'localtime') AS day,
                       json_extract(a.value, '$.provider') AS provider,
                       COALESCE(json_extract(a.value, '$.prompt_tokens'), 0) AS pt,
                       COALESCE(json_extract(a.value, '$.completion_tokens'), 0) AS ct,
                       json_extract(a.value, '$.cost_usd') AS cost
                FROM messages m, json_each(m.route_json, '$.attempts') a
                WHERE m.role = 'assistant' AND m.created_at >= ? AND json_valid(m.route_json)
                UNION ALL
                SELECT date(created_at, 'unixepoch', 'localtime'), COALESCE(provider, 'local'),
                       COALESCE(prompt_tokens, 0), COALESCE(completion_tokens, 0), NULL
                FROM messages
                WHERE role = 'assistant' AND created_at >= ?
                  AND (route_json IS NULL OR NOT json_valid(route_json))
            )
            GROUP BY day, provider ORDER BY day, provider
            """, (start, start)).fetchall()
    finally:
        con.close()
    by_day = [{"day": r["day"], "provider": r["provider"],
               **_tokens(r["pt"], r["ct"], r["cost"] if r["priced"] else None)} for r in rows]
    providers: dict[str, dict[str, Any]] = {}
    for d in by_day:
        p = providers.setdefault(d["provider"], {"provider": d["provider"], **_tokens()})
        _add(p, d)
    total = _tokens()
    for p in providers.values():
        _add(total, p)
    return {"by_provider": sorted(providers.values(), key=lambda p: p["provider"]),
            "by_day": by_day, "total": total}


def _add(into: dict[str, Any], item: dict[str, Any]) -> None:
    into["prompt_tokens"] += item["prompt_tokens"]
    into["completion_tokens"] += item["completion_tokens"]
    if item["cost_usd"] is not None:
        into["cost_usd"] = round((into["cost_usd"] or 0.0) + item["cost_usd"], 8)


def _cache(rows: list[_Row]) -> dict[str, Any]:
    seen = [r.trace.get("cache") for r in rows if r.trace is not None]
    hits = sum(1 for c in seen if c == "hit")
    lookups = sum(1 for c in seen if c in ("hit", "miss"))
    return {"lookups": lookups, "hits": hits, "hit_rate": hits / lookups if lookups else None}


def _citations(rows: list[_Row]) -> dict[str, Any]:
    """Among completed answers: how many were given passages from the user's
    files, and how many cite at least one of them."""
    done = [r for r in rows if r.status == "complete"]
    with_files = citing = 0
    for r in done:
        if r.trace is not None:
            passages = [p for p in r.trace.get("passages") or () if p.get("sent")]
            cites = any(p.get("cited") for p in passages)
        else:
            numbers = {s.get("number") for s in r.sources if isinstance(s, dict)}
            passages = list(numbers)
            cites = bool(numbers & tr.cited_numbers(r.content))
        with_files += bool(passages)
        citing += cites
    return {"answers": len(done), "with_files": with_files, "citing": citing,
            "share": citing / len(done) if done else None}


def index_stats(paths: Paths) -> dict[str, Any]:
    """What the index holds, from its manifest (read-only, so a writing
    index process is never waited for)."""
    from app.core.knowledge.location import knowledge_dir

    folder = knowledge_dir(paths)
    out: dict[str, Any] = {"folders": 0, "files": 0, "indexed": 0, "chunks": 0,
                           "bytes_on_disk": 0, "left_out": 0, "left_out_reasons": {}}
    con = _connect(folder / "manifest.sqlite3")
    if con is None:
        return out
    try:
        out["folders"] = con.execute("SELECT COUNT(*) FROM folders").fetchone()[0]
        counts = dict(con.execute(
            "SELECT status, COUNT(*) FROM files WHERE status != 'ignored' GROUP BY status"
        ).fetchall())
        out["files"] = sum(counts.values())
        out["indexed"] = counts.get("indexed", 0)
        out["chunks"] = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        reasons: Counter[str] = Counter()
        for status, error, n in con.execute(
                "SELECT status, COALESCE(error, ''), COUNT(*) FROM files "
                "WHERE status IN ('skipped', 'failed') GROUP BY status, error"):
            reasons[_DETAIL.sub("", error) or status] += n
    except sqlite3.DatabaseError:
        return out  # an index being created right now: nothing to count yet
    finally:
        con.close()
    out["left_out"] = sum(reasons.values())
    out["left_out_reasons"] = dict(reasons.most_common())
    out["bytes_on_disk"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return out


def as_text(s: dict[str, Any]) -> str:
    """The statistics as `hearth stats` prints them."""
    lines: list[str] = []
    if s["message"]:
        lines.append(s["message"])
    else:
        lines.append(f"Answers: {s['answers']:,}" + (
            f" ({s['legacy_answers']} from before traces were kept)"
            if s.get("legacy_answers") else ""))
        lines += ["", "By model"]
        lines += _table(("Provider", "Model", "Answers", "Failed", "First token p50/p95",
                         "Tokens/s p50/p95"),
                        [(m["provider"], m["model"], str(m["answers"]), str(m["failed"]),
                          f"{_n(m['ttft_p50_s'], ' s')} / {_n(m['ttft_p95_s'], ' s')}",
                          f"{_n(m['tokens_per_s_p50'], '', 1)} / "
                          f"{_n(m['tokens_per_s_p95'], '', 1)}") for m in s["by_model"]])
        fb = s["fallback"]
        lines += ["", f"Fallbacks: {fb['answers']} of {fb['routed']} answers "
                      f"({_pct(fb['rate'])})"]
        lines += [f"  {n}  {why}" for why, n in fb["reasons"].items()]
        tok = s["tokens"]
        lines += ["", "Tokens and cost by provider"]
        lines += _table(("Provider", "In", "Out", "Cost"),
                        [(p["provider"], f"{p['prompt_tokens']:,}",
                          f"{p['completion_tokens']:,}", _cost(p["cost_usd"]))
                         for p in [*tok["by_provider"], {"provider": "total", **tok["total"]}]])
        lines += ["", "Per day"]
        lines += _table(("Day", "Provider", "In", "Out", "Cost"),
                        [(d["day"], d["provider"], f"{d['prompt_tokens']:,}",
                          f"{d['completion_tokens']:,}", _cost(d["cost_usd"]))
                         for d in tok["by_day"]])
        c, ci = s["cache"], s["citations"]
        lines += ["", f"Cache: {c['hits']} hits of {c['lookups']} lookups "
                      f"({_pct(c['hit_rate'])})",
                  f"Citations: {ci['citing']} of {ci['answers']} answers cite a file "
                  f"({_pct(ci['share'])}); {ci['with_files']} were given passages"]
    ix = s["index"]
    lines += ["", f"Index: {ix['folders']} folders, {ix['indexed']:,} of {ix['files']:,} files "
                  f"indexed, {ix['chunks']:,} passages, {ix['bytes_on_disk'] / 1e6:.1f} MB"]
    if ix["left_out"]:
        lines.append(f"Files left out: {ix['left_out']:,}")
        lines += [f"  {n}  {why}" for why, n in ix["left_out_reasons"].items()]
    return "\n".join(lines)


def _table(columns: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    rows = [columns, *body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _n(x: float | None, unit: str, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


def _cost(x: float | None) -> str:
    return "—" if x is None else f"${x:.4f}"
