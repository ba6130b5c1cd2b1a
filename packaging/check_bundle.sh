#!/usr/bin/env bash
# Check Hearth's one-folder app as a user would get it, in one command:
#   bash packaging/check_bundle.sh [BUNDLE]      (default: dist/hearth)
#
# The bundle is copied to a temporary folder outside the repository and made
# read-only there; every command runs with a clean environment (env -i: no
# virtualenv, PATH=/usr/bin:/bin, a temporary HOME and HEARTH_HOME). It checks:
#   1. hearth --version
#   2. hearth ask --offline answers with the bundled model
#   3. hearth index add FOLDER, then hearth search finds a file
#   4. the window (under Xvfb, or Qt's offscreen platform when Xvfb is not
#      installed) indexes a folder through its index process (the bundle's own
#      executable) and quits with 0, its index process ended
#   5. nothing was written inside the read-only install folder
#   6. a menu entry installed from the bundle follows the bundle when it is
#      moved, at its next start
# and, when a source install exists (.venv/bin/hearth, from scripts/setup.sh):
#   7. a bundle launch hands over to the source install's running window
#   8. cold start to the first window, bundle against source: 5 runs each,
#      alternating, medians and their ratio
# Exit status 0 when every check passed. Needs xvfb-run (Debian: apt-get
# install xvfb xauth) for the window under a real X server.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$(cd "${1:-$ROOT/dist/hearth}" 2>/dev/null && pwd)" || BUNDLE=""
if [[ -z "$BUNDLE" || ! -x "$BUNDLE/hearth" ]]; then
    echo "check_bundle: no bundle at ${1:-$ROOT/dist/hearth}; build it with: bash packaging/build_bundle.sh" >&2
    exit 1
fi
RUNS="${HEARTH_CHECK_RUNS:-5}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hearth-check.XXXXXX")"
BG_PIDS=()
cleanup() {
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    chmod -R u+w "$WORK" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

FAILED=0
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; FAILED=$((FAILED + 1)); }

# -- the install: a read-only copy outside the repository --------------------------
INSTALL="$WORK/readonly/hearth"
mkdir -p "$WORK/readonly"
cp -a "$BUNDLE" "$INSTALL"
chmod -R a-w "$WORK/readonly"
HEARTH="$INSTALL/hearth"
listing() { (cd "$1" && find . -printf '%p %s %T@ %m\n' | sort); }
listing "$INSTALL" >"$WORK/before.txt"

mkdir -p "$WORK/home" "$WORK/runtime" "$WORK/tmp" "$WORK/xdg-data" "$WORK/xdg-config"
chmod 700 "$WORK/runtime"
# A clean environment: no virtualenv, no PYTHONPATH, the system's PATH only.
clean() {
    local home="$1"
    shift
    env -i HOME="$WORK/home" PATH=/usr/bin:/bin LANG=C.UTF-8 HEARTH_HOME="$home" \
        TMPDIR="$WORK/tmp" XDG_RUNTIME_DIR="$WORK/runtime" XDG_DATA_HOME="$WORK/xdg-data" \
        XDG_CONFIG_HOME="$WORK/xdg-config" "$@"
}

# A display for the window: one Xvfb for the whole check (xvfb-run starts it
# and runs this script's window part inside it), else Qt's offscreen platform.
if command -v xvfb-run >/dev/null && command -v xauth >/dev/null; then
    DISPLAY_KIND="Xvfb (xvfb-run)"
    XVFB=(xvfb-run -a -s "-screen 0 1280x800x24 -nolisten tcp")
    windowed() { local home="$1"; shift; clean "$home" "${XVFB[@]}" "$@"; }
else
    DISPLAY_KIND="Qt offscreen platform (xvfb-run not installed)"
    windowed() { local home="$1"; shift; clean "$home" env QT_QPA_PLATFORM=offscreen "$@"; }
fi

echo "Checking $BUNDLE"
echo "  copied to $INSTALL (read-only), window on $DISPLAY_KIND"

# -- 1. version -------------------------------------------------------------------------
version="$(clean "$WORK/h1" "$HEARTH" --version 2>&1)"
if [[ "$version" =~ ^hearth\ [0-9] ]]; then ok "hearth --version: $version"
else bad "hearth --version said: $version"; fi

# -- 2. an offline answer ---------------------------------------------------------------
answer="$(clean "$WORK/h1" "$HEARTH" ask --offline --max-tokens 24 --temperature 0 \
    "Name one colour of the rainbow." 2>"$WORK/ask.err")"
code=$?
if [[ $code -eq 0 && -n "${answer//[[:space:]]/}" ]]; then
    ok "hearth ask --offline answered: $(echo "$answer" | tr '\n' ' ' | cut -c1-70)…"
else bad "hearth ask --offline (exit $code): $(tail -3 "$WORK/ask.err")"; fi

# -- 3. index a folder, then search it --------------------------------------------------
DOCS="$WORK/docs"
mkdir -p "$DOCS"
echo "The Atlas launch moved to the ninth of October, after the design review." >"$DOCS/atlas.txt"
echo "Borealis heats its greenhouse with a ground-source heat pump." >"$DOCS/borealis.md"
if clean "$WORK/h1" "$HEARTH" index add "$DOCS" >"$WORK/index.out" 2>&1; then
    found="$(clean "$WORK/h1" "$HEARTH" search "greenhouse heat pump" 2>&1)"
    if grep -q "borealis.md" <<<"$found"; then
        ok "hearth index add + hearth search found $(grep -m1 -o '[^ ]*borealis.md[^ ]*' <<<"$found")"
    else bad "hearth search did not find borealis.md: $found"; fi
else bad "hearth index add: $(tail -3 "$WORK/index.out")"; fi

# -- 4. the window and its index process ------------------------------------------------
NOTES="$WORK/notes"
mkdir -p "$NOTES"
echo "Kettle descaling: citric acid, two spoons, let it stand an hour." >"$NOTES/kettle.txt"
echo "The bike's rear tyre takes 4.5 bar." >"$NOTES/bike.txt"
line="$(windowed "$WORK/h1" "$HEARTH" --self-test-window "$NOTES" --self-test-timeout 180 \
    2>"$WORK/window.err")"
code=$?
if [[ $code -eq 0 && "$line" == self-test:* ]]; then
    ok "window: ${line#self-test: }"
    if ! grep -q "$INSTALL/hearth" <<<"$line"; then
        bad "the window's index process did not run the bundle's executable: $line"
    fi
    child="$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' <<<"$line")"
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        bad "the index process (pid $child) was still running after the window quit"
    else ok "the window quit with exit status 0 and its index process ended with it"; fi
else bad "window self-test (exit $code): $(grep -v -e '^QStandardPaths' "$WORK/window.err" | tail -3)"; fi

# -- 5. nothing written inside the read-only install ------------------------------------
listing "$INSTALL" >"$WORK/after.txt"
if diff -q "$WORK/before.txt" "$WORK/after.txt" >/dev/null; then
    ok "the read-only install folder is unchanged; data went to HEARTH_HOME"
else bad "files changed inside the install folder: $(diff "$WORK/before.txt" "$WORK/after.txt" | head -5)"; fi

# -- 6. a moved bundle's menu entry follows it ------------------------------------------
ENTRY="$WORK/xdg-data/applications/io.github.hearth.Hearth.desktop"
if clean "$WORK/h6" "$HEARTH" --install-desktop-entry >"$WORK/entry.out" 2>&1 \
        && grep -q "^Exec=$HEARTH" "$ENTRY"; then
    MOVED="$WORK/moved to here/hearth"
    mkdir -p "$WORK/moved to here"
    chmod u+w "$WORK/readonly"
    mv "$INSTALL" "$MOVED"
    chmod u-w "$WORK/readonly"
    windowed "$WORK/h6" "$MOVED/hearth" --startup-time >/dev/null 2>"$WORK/moved.err"
    program="$(sed -n 's/^Exec=//p' "$ENTRY" | head -1)"
    if [[ "$program" == "\"$MOVED/hearth\""* ]]; then
        ok "after moving the bundle, its next start pointed the menu entry at $MOVED/hearth"
    else bad "the menu entry still says Exec=$program after the bundle moved"; fi
    clean "$WORK/h6" "$MOVED/hearth" --uninstall-desktop-entry >/dev/null 2>&1
    chmod u+w "$WORK/readonly"
    mv "$MOVED" "$INSTALL"
    chmod u-w "$WORK/readonly"
else bad "hearth --install-desktop-entry: $(tail -3 "$WORK/entry.out")"; fi

# -- 7 and 8 need the source install ------------------------------------------------------
SOURCE="$ROOT/.venv/bin/hearth"
if [[ ! -x "$SOURCE" ]]; then
    echo "skip  7 and 8: no source install at $SOURCE (scripts/setup.sh --no-run makes one)"
else
    # The source install runs this checkout's code.
    source_env=(PYTHONPATH="$ROOT")

    # -- 7. one Hearth per user across installs ------------------------------------------
    setsid env -i HOME="$WORK/home" PATH=/usr/bin:/bin LANG=C.UTF-8 HEARTH_HOME="$WORK/h7" \
        TMPDIR="$WORK/tmp" XDG_RUNTIME_DIR="$WORK/runtime" XDG_DATA_HOME="$WORK/xdg-data" \
        XDG_CONFIG_HOME="$WORK/xdg-config" "${source_env[@]}" QT_QPA_PLATFORM=offscreen \
        "$SOURCE" >"$WORK/source-window.out" 2>&1 &
    BG_PIDS+=($!)
    handed=""
    for _ in $(seq 1 60); do
        # No display here: a bundle launch that found no running Hearth says so (exit 3).
        clean "$WORK/h7" "$HEARTH" --quick-ask >"$WORK/handoff.out" 2>&1
        code=$?
        if [[ $code -eq 0 ]]; then handed=yes; break; fi
        [[ $code -eq 3 ]] || break
        sleep 1
    done
    if [[ -n "$handed" ]]; then
        ok "a bundle launch handed its request to the running source install's window"
    else bad "the bundle did not hand over to the source window: $(tail -2 "$WORK/handoff.out")"; fi
    kill -TERM -- "-${BG_PIDS[-1]}" 2>/dev/null
    wait "${BG_PIDS[-1]}" 2>/dev/null
    BG_PIDS=("${BG_PIDS[@]:0:${#BG_PIDS[@]}-1}")

    # -- 8. cold start to the first window -----------------------------------------------
    median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
    : >"$WORK/bundle.times"
    : >"$WORK/source.times"
    startup_bundle() { local h; h="$(mktemp -d "$WORK/start.XXXXXX")"
        windowed "$h" "$HEARTH" --startup-time 2>/dev/null | sed -n 's/^startup: first window in \([0-9.]*\) s$/\1/p'; }
    startup_source() { local h; h="$(mktemp -d "$WORK/start.XXXXXX")"
        windowed "$h" env "${source_env[@]}" "$SOURCE" --startup-time 2>/dev/null | sed -n 's/^startup: first window in \([0-9.]*\) s$/\1/p'; }
    startup_bundle >/dev/null   # one of each first, so that neither pays for a cold disk cache
    startup_source >/dev/null
    for _ in $(seq 1 "$RUNS"); do
        startup_bundle >>"$WORK/bundle.times"
        startup_source >>"$WORK/source.times"
    done
    nb=$(wc -l <"$WORK/bundle.times"); ns=$(wc -l <"$WORK/source.times")
    if [[ $nb -eq $RUNS && $ns -eq $RUNS ]]; then
        mb=$(median <"$WORK/bundle.times"); ms=$(median <"$WORK/source.times")
        ok "first window: bundle median ${mb} s ($(paste -sd' ' "$WORK/bundle.times")), source median ${ms} s ($(paste -sd' ' "$WORK/source.times")); bundle/source = $(awk -v b="$mb" -v s="$ms" 'BEGIN {printf "%.2f", b/s}')"
    else bad "startup time: only $nb bundle and $ns source runs reached the first window"; fi
fi

echo "load: $(uptime | sed 's/.*load average/load average/')"
if [[ $FAILED -eq 0 ]]; then
    echo "All checks passed."
else
    echo "$FAILED check(s) failed."
    exit 1
fi
