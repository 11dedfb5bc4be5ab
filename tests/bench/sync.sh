#!/usr/bin/env bash
# `ferry sync` against rsync over ssh on loopback, on the same tree of
# 10,000 files of 4 KiB in 100 directories, both ways:
#   - a second run with nothing changed (both compare by size and mtime);
#   - a run after changing 1% of the files (100 files rewritten, same size,
#     new mtime: each tool must find and send exactly those).
# Each measurement alternates the tools run by run (a slow spell of this
# shared host hits both), and reports the median and the range.
#
# Usage: tests/bench/sync.sh [--quick]     (--quick: 2,000 files)
# Environment:
#   FERRY_BIN_DIR  directory holding release ferry and ferryd (default:
#                  target/release; build them first with
#                  `cargo build --release -p ferry-server -p ferry-tui --bins`)
#   BENCH_DIR      scratch directory (default /tmp/ferry-sync-bench)
#   BENCH_RUNS     timed runs per measurement (default 5)
#   BENCH_MEMORY_FILES  also measure ferry sync's peak RSS on a tree of this
#                  many files (e.g. 100000), nothing changed and dry run
# Exit status: 0 when every run worked and every copy equals its source,
# 1 otherwise, 2 on a setup error. Prints a markdown table on stdout.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-sync-bench}")
RUNS=${BENCH_RUNS:-5}
BIN=${FERRY_BIN_DIR:-$REPO/target/release}
CIPHER=aes128-gcm@openssh.com
PW=benchpw
NFILES=10000
[[ ${1:-} == --quick ]] && NFILES=2000
LOG=$D/bench.log
SSHD_PID='' FERRYD_PID=''
FAILED=0

log() { printf '[sync-bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
fail() { log "FAILED: $*"; FAILED=1; }
now() { date +%s.%N; }
cleanup() {
    local p
    for p in $FERRYD_PID $SSHD_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $BIN/ferry && -x $BIN/ferryd ]] || die "no ferry/ferryd in $BIN (build them in release mode)"
command -v rsync >/dev/null && [[ -x /usr/sbin/sshd ]] || die "needs rsync and openssh-server"
rm -rf "$D/src" "$D/root" "$D/rsync-dst" "$D/ferry-dl" "$D/rsync-dl"
mkdir -p "$D"
: >"$LOG"

# --- the tree (private: the runs change it) -------------------------------------
SRC=$D/src
log "generating $SRC ($NFILES x 4 KiB in 100 dirs)"
per=$((NFILES / 100))
for ((d = 0; d < 100; d++)); do
    mkdir -p "$SRC/d$d"
    head -c $((per * 4096)) /dev/urandom | split -b 4096 -a 4 -d - "$SRC/d$d/f"
done
# Old mtimes, as a real tree has (and so no file is "just written").
find "$SRC" -type f -exec touch -d '2024-01-01 12:00:00' {} +

# --- private sshd on loopback (tests/bench/lib/sshd.sh) --------------------------
# shellcheck source=lib/sshd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/sshd.sh"
start_sshd
SSH="ssh $SSH_OPTS"

# --- ferryd -------------------------------------------------------------------------
ROOT=$D/root
mkdir -p "$ROOT"
printf '%s\n' "$PW" | "$BIN/ferryd" user add bench --max-entries 0 --root "$ROOT" >>"$LOG" 2>&1 || die "ferryd user add"
"$BIN/ferryd" serve --root "$ROOT" --listen 127.0.0.1:0 >"$D/ferryd.out" 2>>"$D/ferryd.log" & FERRYD_PID=$!
for ((i = 0; i < 100; i++)); do
    PORT=$(sed -n '1s/^listening on .*:\([0-9]*\)$/\1/p' "$D/ferryd.out")
    [[ -n $PORT ]] && break; sleep 0.05
done
[[ -n ${PORT:-} ]] || die "ferryd did not start, see $D/ferryd.log"
FP=$("$BIN/ferryd" fingerprint --root "$ROOT")
ferry() {
    FERRY_PASSWORD=$PW FERRY_KNOWN_SERVERS=$D/known_servers \
        "$BIN/ferry" -s "127.0.0.1:$PORT" -u bench --fingerprint "$FP" "$@"
}
HOME_TREE=$ROOT/home/bench/tree

# The commands measured.
ferry_up() { ferry sync "$SRC" :tree; }
rsync_up() { rsync -a -e "$SSH" "$SRC/" "127.0.0.1:$D/rsync-dst/"; }
ferry_down() { ferry sync :tree "$D/ferry-dl"; }
rsync_down() { rsync -a -e "$SSH" "127.0.0.1:$HOME_TREE/" "$D/rsync-dl/"; }

# Rewrites 1% of the files of tree $1 (round $2 picks which), same size.
change() {
    local d
    for ((d = 0; d < 100; d++)); do
        head -c 4096 /dev/urandom >"$1/d$d/f$(printf '%04d' $(((d + $2 * 7) % per)))"
    done
}
same() { diff -rq "$1" "$2" >>"$LOG" 2>&1 || fail "$2 differs from $1"; }

# measure NAME PREP CMD...: RUNS runs (PREP untimed before each); the
# timings go to TIMES[NAME].
declare -A TIMES=()
time_one() {
    local name=$1 t0 t1
    shift
    sync
    t0=$(now)
    "$@" >>"$LOG" 2>&1 || { fail "$name (see $LOG)"; return; }
    t1=$(now)
    TIMES[$name]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
}
stats() { # median (min-max) of TIMES[$1]
    printf '%s\n' ${TIMES[$1]} | sort -n |
        awk '{ v[NR] = $1 } END { printf "%.3f s (%.3f-%.3f)", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

log "first runs (untimed): ferry sync and rsync fill their destinations"
ferry_up >>"$LOG" 2>&1 || die "first ferry sync failed, see $LOG"
rsync_up >>"$LOG" 2>&1 || die "first rsync failed, see $LOG"
ferry_down >>"$LOG" 2>&1 || die "first ferry sync down failed, see $LOG"
rsync_down >>"$LOG" 2>&1 || die "first rsync down failed, see $LOG"
same "$SRC" "$HOME_TREE"; same "$SRC" "$D/rsync-dst"
same "$HOME_TREE" "$D/ferry-dl"; same "$HOME_TREE" "$D/rsync-dl"

log "nothing changed, $RUNS runs each way"
for ((r = 0; r < RUNS; r++)); do
    if ((r % 2)); then time_one rsync_up rsync_up; time_one ferry_up ferry_up
    else time_one ferry_up ferry_up; time_one rsync_up rsync_up; fi
    if ((r % 2)); then time_one rsync_down rsync_down; time_one ferry_down ferry_down
    else time_one ferry_down ferry_down; time_one rsync_down rsync_down; fi
done
# Nothing may have been sent: a --json run's result says so.
ferry --json sync "$SRC" :tree | grep -q '"copied":{"bytes":0,"files":0}' \
    || fail "a second ferry sync copied files"

log "1% changed, $RUNS runs each way"
for ((r = 0; r < RUNS; r++)); do
    change "$SRC" "$r"
    if ((r % 2)); then time_one rsync_up1 rsync_up; time_one ferry_up1 ferry_up
    else time_one ferry_up1 ferry_up; time_one rsync_up1 rsync_up; fi
    # Downloads: the server's tree changes (written there directly).
    change "$HOME_TREE" "$((r + 50))"
    if ((r % 2)); then time_one rsync_down1 rsync_down; time_one ferry_down1 ferry_down
    else time_one ferry_down1 ferry_down; time_one rsync_down1 rsync_down; fi
done
same "$SRC" "$D/rsync-dst"
same "$HOME_TREE" "$D/ferry-dl"; same "$HOME_TREE" "$D/rsync-dl"
# The server's tree was changed behind the upload's back: compare the
# upload with the source up to the files changed there.
ferry sync "$SRC" :tree >>"$LOG" 2>&1 && same "$SRC" "$HOME_TREE"

rss=$( { FERRY_PASSWORD=$PW FERRY_KNOWN_SERVERS=$D/known_servers /usr/bin/time -f '%M' \
    "$BIN/ferry" -s "127.0.0.1:$PORT" -u bench --fingerprint "$FP" sync "$SRC" :tree >/dev/null; } 2>&1 | tail -n 1)

# Memory with a large tree (BENCH_MEMORY_FILES, e.g. 100000 one-byte files
# in 1,000 directories): peak RSS of a run with nothing changed (the
# comparison alone), and of a dry run against an empty destination (a
# plan that holds every file as a change).
MEM_LINES=''
if [[ -n ${BENCH_MEMORY_FILES:-} ]]; then
    BIGSRC=$D/many
    log "generating $BIGSRC ($BENCH_MEMORY_FILES files)"
    rm -rf "$BIGSRC"
    for ((d = 0; d < 1000; d++)); do
        mkdir -p "$BIGSRC/d$d"
        (cd "$BIGSRC/d$d" && for ((f = 0; f < BENCH_MEMORY_FILES / 1000; f++)); do printf x >"f$f"; done)
    done
    ferry sync "$BIGSRC" :many >>"$LOG" 2>&1 || fail "ferry sync of $BIGSRC"
    peak() {
        { FERRY_PASSWORD=$PW FERRY_KNOWN_SERVERS=$D/known_servers /usr/bin/time -f '%M %e' \
            "$BIN/ferry" -s "127.0.0.1:$PORT" -u bench --fingerprint "$FP" sync "$@" >/dev/null; } 2>&1 | tail -n 1
    }
    read -r kib secs <<<"$(peak "$BIGSRC" :many)"
    MEM_LINES+="| $BENCH_MEMORY_FILES files, nothing changed | ${kib} KiB | ${secs} s |"$'\n'
    read -r kib secs <<<"$(peak -n "$BIGSRC" :elsewhere)"
    MEM_LINES+="| $BENCH_MEMORY_FILES files, dry run, all to copy | ${kib} KiB | ${secs} s |"$'\n'
    read -r kib secs <<<"$(peak "$SRC" :tree)"
    MEM_LINES+="| $NFILES files, nothing changed | ${kib} KiB | ${secs} s |"$'\n'
    rm -rf "$BIGSRC"
fi

echo "| sync, $NFILES x 4 KiB, median (range) of $RUNS | ferry sync | rsync -a over ssh |"
echo "|---|---|---|"
echo "| upload, nothing changed | $(stats ferry_up) | $(stats rsync_up) |"
echo "| upload, 1% changed | $(stats ferry_up1) | $(stats rsync_up1) |"
echo "| download, nothing changed | $(stats ferry_down) | $(stats rsync_down) |"
echo "| download, 1% changed | $(stats ferry_down1) | $(stats rsync_down1) |"
echo
echo "ferry sync's peak RSS (nothing changed, $NFILES files): ${rss} KiB"
if [[ -n $MEM_LINES ]]; then
    echo
    echo "| ferry sync | peak RSS | wall time |"
    echo "|---|---|---|"
    printf '%s' "$MEM_LINES"
fi
exit $FAILED
