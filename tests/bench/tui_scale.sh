#!/usr/bin/env bash
# TUI at scale (issue 16, section 1): the real `ferry` TUI in tmux against a
# real ferryd on loopback copies 100,000 small files down and/or up; while
# it runs, F1 is pressed twice a second and the time until the help shows
# (as tmux sees it) is recorded. Prints, per half: the copy's time, the
# key answers (median, p90, min, max, and all of them sorted) and the
# client's peak RSS (VmHWM). Figures, not pass/fail timings; targets: every
# key within 100 ms, the client under 200 MiB.
#
# Usage: tests/bench/tui_scale.sh [down|up|both]   (default: up)
#
# Environment:
#   FERRY_BIN_DIR       directory with release ferry and ferryd (default:
#                       builds target/release)
#   FERRY_SCALE_FILES   files (default 100000)
#
# Each half named alone runs in a fresh client and server, so its peak
# RSS is its own. Needs tmux.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DIRECTION=${1:-up}
cd "$REPO"
if [[ -z ${FERRY_BIN_DIR:-} ]]; then
    cargo build --release --bins -p ferry-tui -p ferry-server >&2
    export FERRY_BIN_DIR=$REPO/target/release
fi
command -v tmux >/dev/null || { echo "tmux is needed" >&2; exit 2; }
halves=("$DIRECTION")
[[ $DIRECTION == both ]] && halves=(both)
for half in "${halves[@]}"; do
    FERRY_SCALE_DIRECTION=$half cargo test -p ferry-e2e --test tui_tmux scale_by_hand \
        -- --ignored --nocapture 2>&1 | grep -E '^(pid|download|upload|worst)'
done
