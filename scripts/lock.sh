#!/usr/bin/env bash
# Write packaging/constraints.txt: the exact versions, as installed in .venv/,
# of everything Hearth needs (its dependencies, the dev and shortcut extras,
# and theirs), which scripts/setup.sh installs with `-c`. After a change of
# versions passes:
#   scripts/setup.sh --no-run --dev    (install; upgrade what you mean to)
#   scripts/test.sh && scripts/lint.sh
#   scripts/lock.sh                    (then commit the file)
# Left out: Hearth itself, llama-cpp-python (built from source at the version
# in packaging/versions.env), the model packages (pinned there), and whatever
# else .venv/ holds that Hearth does not need.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VPY="$ROOT/.venv/bin/python"
[ -x "$VPY" ] || { echo "lock.sh: no .venv/; run scripts/setup.sh --no-run --dev first" >&2; exit 1; }
out="packaging/constraints.txt"
"$VPY" - "$out" <<'PY'
import platform
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LEFT_OUT = {"hearth", "llama-cpp-python"}
with open("packaging/versions.env", encoding="utf-8") as fh:
    for line in fh:
        if line.startswith("MODEL_PACKAGES="):
            LEFT_OUT |= {canonicalize_name(p.split("==")[0]) for p in line.split("=", 1)[1].split()}

pinned: dict[str, str] = {}
todo = [("hearth", frozenset({"dev", "shortcut"}))]
seen: set[tuple[str, frozenset[str]]] = set()
while todo:
    name, extras = todo.pop()
    if (name, extras) in seen:
        continue
    seen.add((name, extras))
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        continue  # an optional extra that is not installed (e.g. pynput)
    key = canonicalize_name(dist.metadata["Name"])
    if key not in LEFT_OUT:
        pinned[key] = f"{dist.metadata['Name']}=={dist.version}"
    for raw in dist.requires or []:
        req = Requirement(raw)
        wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
        if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))

with open(sys.argv[1], "w", encoding="utf-8") as fh:
    fh.write("# The versions Hearth was last tested with (scripts/setup.sh installs with -c).\n")
    fh.write(f"# Written by scripts/lock.sh from .venv/ (Python {platform.python_version()}, "
             f"{sys.platform}); do not edit by hand.\n")
    fh.write("# llama-cpp-python and the model packages are pinned in packaging/versions.env.\n")
    for key in sorted(pinned):
        fh.write(pinned[key] + "\n")
print(f"lock.sh: wrote {sys.argv[1]} ({len(pinned)} packages)")
PY
