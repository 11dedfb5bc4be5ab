#!/usr/bin/env bash
# Ferry load and abuse benchmark (issue 12, item 15): many clients at once,
# many idle sessions, hostile users against a victim, and a tree put beside
# a big upload. Prints a markdown table; figures, not pass/fail timings.
#
# Usage: tests/bench/load.sh [--quick]
#   --quick   fewer clients (50/200/200) and a 512 MiB big upload
#
# Environment:
#   FERRY_BIN_DIR   directory with release ferry and ferryd (default: builds
#                   target/release); the load example is always built
#   BENCH_DIR       scratch dir (default /tmp/ferry-load)
#   BENCH_RUNS      rounds for the victim and tree figures (default 3)
#   BENCH_PLAINTEXT 1 to run without TLS
#   BENCH_ONLY      scenarios to run, of: honest idle hostile checksums
#                   tree (default: all)
#   BENCH_LIMITS    extra lines for ferryd's [limits] (e.g. "bulk_nice = 19")
#   BENCH_BIG_NICE  nice value of the tree scenario's big upload client
#                   (default 0; 19 stands in for a client on another
#                   machine, which would not take this host's cores)
#
# Each scenario runs against a freshly started ferryd, so its peak RSS
# (VmHWM) is that scenario's alone. Users log in with 4,096 PBKDF2
# iterations (the minimum) so the driver's 1,000 key derivations do not
# dominate; the server's work per login does not depend on it.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-load}")
RUNS=${BENCH_RUNS:-3}
QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1
N200=200 N1000=1000 IDLE=1000 BIG_MIB=3072 TREE_FILES=10000
((QUICK)) && N200=50 N1000=200 IDLE=200 BIG_MIB=512 TREE_FILES=2000
PW=loadpw
PLAIN=()
[[ ${BENCH_PLAINTEXT:-0} == 1 ]] && PLAIN=(--insecure-plaintext)

log() { printf '[load] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
FERRYD_PID='' BG=()
cleanup() {
    local p
    for p in "${BG[@]}" $FERRYD_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$D"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- binaries ---------------------------------------------------------------
if [[ -n ${FERRY_BIN_DIR:-} ]]; then BIN=$FERRY_BIN_DIR; else
    log "cargo build --release --bins"
    (cd "$REPO" && cargo build --release --bins -q) || die "build failed"
    BIN=$REPO/target/release
fi
log "cargo build --release --example load"
(cd "$REPO" && cargo build --release -p ferry-e2e --example load -q) || die "build of load failed"
LOAD=$REPO/target/release/examples/load

# --- data -------------------------------------------------------------------
BIG=$D/big-${BIG_MIB}M.bin
[[ -f $BIG ]] || { log "generating $BIG"; head -c "${BIG_MIB}M" /dev/urandom >"$BIG.tmp"; mv "$BIG.tmp" "$BIG"; }
MID=$D/mid-50M.bin
[[ -f $MID ]] || head -c 50M /dev/urandom >"$MID"
TREE=$D/tree-$TREE_FILES
if [[ ! -d $TREE ]]; then
    log "generating $TREE"
    rm -rf "$TREE.tmp"
    for ((d = 0; d < 100; d++)); do
        mkdir -p "$TREE.tmp/d$d"
        head -c $((TREE_FILES / 100 * 4096)) /dev/urandom | split -b 4096 -a 4 -d - "$TREE.tmp/d$d/f"
    done
    mv "$TREE.tmp" "$TREE"
fi

# --- ferryd -----------------------------------------------------------------
ROOT=$D/root CONF=$D/ferryd.toml
rm -rf "$ROOT"
cat >"$CONF" <<EOF
root = "$ROOT"
[limits]
${BENCH_LIMITS:-}
[auth]
iterations = 4096
EOF
start_ferryd() {
    local i port
    [[ -n $FERRYD_PID ]] && { kill "$FERRYD_PID"; wait "$FERRYD_PID" 2>/dev/null || true; }
    : >"$D/ferryd.out"
    "$BIN/ferryd" serve --config "$CONF" --listen 127.0.0.1:0 "${PLAIN[@]}" \
        >"$D/ferryd.out" 2>>"$D/ferryd.log" & FERRYD_PID=$!
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n '1s/^listening on .*:\([0-9]*\)$/\1/p' "$D/ferryd.out")
        if [[ -n $port ]]; then
            ADDR=127.0.0.1:$port
            if ((${#PLAIN[@]})); then unset FERRY_FINGERPRINT; else
                FERRY_FINGERPRINT=$("$BIN/ferryd" fingerprint --config "$CONF")
                export FERRY_FINGERPRINT
            fi
            return 0
        fi
        sleep 0.05
    done
    die "ferryd did not start, see $D/ferryd.log"
}
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$FERRYD_PID/status"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$FERRYD_PID/status"; }
add_user() { printf "%s\n" "$PW" | "$BIN/ferryd" user add "$1" --config "$CONF" "${@:2}" >/dev/null 2>&1; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
range() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }
export FERRY_PASSWORD=$PW

ONLY=" ${BENCH_ONLY:-honest idle hostile checksums tree} "
want() { [[ $ONLY == *" $1 "* ]]; }
if want honest || want idle; then
    log "adding $N1000 users"
    for ((i = 0; i < N1000; i++)); do add_user "load$i"; done
fi
add_user victim
add_user evil --quota 10MiB
add_user greedy
add_user tree

declare -a ROWS=()
row() { ROWS+=("| $1 | $2 | $3 |"); log "$1: $2"; }
# Victim figures (medians of RUNS) quiet, then beside what "$@" starts.
victim_beside() {
    local label=$1 k q l qm lm ratio under; shift
    start_ferryd
    for ((r = 0; r < RUNS; r++)); do "$LOAD" victim "$ADDR" victim "$MID" 2>>"$D/load.err"; done >"$D/victim-quiet.out"
    "$@"
    for ((r = 0; r < RUNS; r++)); do
        log "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)"
        "$LOAD" victim "$ADDR" victim "$MID" 2>>"$D/load.err" || echo "ls_ms=FAIL put1k_ms=FAIL putbig_ms=FAIL"
    done >"$D/victim-loaded.out"
    under=$(hwm)
    kill "${BG[@]}" 2>/dev/null || true; wait "${BG[@]}" 2>/dev/null || true; BG=()
    for k in ls_ms put1k_ms putbig_ms; do
        q=$(grep -o "$k=[0-9.]*" "$D/victim-quiet.out" | cut -d= -f2)
        l=$(grep -o "$k=[0-9.A-Z]*" "$D/victim-loaded.out" | cut -d= -f2)
        qm=$(median <<<"$q") lm=$(median <<<"$l")
        ratio=$(awk -v a="$lm" -v b="$qm" 'BEGIN {if (a + 0 == 0) print "FAIL"; else printf "%.2fx", a / b}')
        row "victim $k beside $label" \
            "quiet $qm ($(range <<<"$q")), loaded $lm ($(range <<<"$l")) = $ratio" "ferryd peak $under MiB"
    done
}

# --- 1. honest clients at once ------------------------------------------------
want honest && for n in "$N200" "$N1000"; do
    start_ferryd
    out=$("$LOAD" honest "$ADDR" "$n" $((1 << 20)) 2>>"$D/load.err") || true
    row "$n clients at once, each put+get+ls of its own 1 MiB file" "$out" "peak RSS $(hwm) MiB"
done

# --- 2. idle sessions -----------------------------------------------------------
if want idle; then
start_ferryd
base=$(rss)
"$LOAD" idle "$ADDR" "$IDLE" 10 >"$D/idle.out" 2>>"$D/load.err" & BG+=($!)
for ((i = 0; i < 600; i++)); do grep -q '^ready' "$D/idle.out" && break; sleep 0.1; done
sleep 2
held=$(rss)
wait "${BG[-1]}" || true
row "$IDLE idle sessions" "$(tr '\n' ' ' <"$D/idle.out")" "RSS $held MiB (idle server $base MiB), peak $(hwm) MiB"
fi

# --- 3. a victim beside hostile sessions and strangers ------------------------
hostile_load() {
    "$LOAD" hostile "$ADDR" evil $((40 * RUNS + 20)) >"$D/hostile.out" 2>>"$D/load.err" & BG+=($!)
    "$LOAD" strangers "$ADDR" 127.0.0.2 $((40 * RUNS + 20)) >/dev/null 2>>"$D/load.err" & BG+=($!)
    sleep 15
}
want hostile && victim_beside "16 hostile sessions + 2,000 stranger sockets" hostile_load

# --- 3b. a victim beside one user's checksums (red-team F10) -------------------
checksum_load() {
    "$LOAD" checksums "$ADDR" greedy $((40 * RUNS + 60)) >"$D/checksums.out" 2>>"$D/load.err" & BG+=($!)
    sleep 10
}
want checksums && victim_beside "16 sessions of one user x 64 checksums of 64 MiB" checksum_load

# --- 4. tree put beside a big upload ---------------------------------------------
if want tree; then
start_ferryd
ferry_as() { "$BIN/ferry" -s "$ADDR" -u "$1" ${FERRY_FINGERPRINT:+--fingerprint "$FERRY_FINGERPRINT"} "${PLAIN[@]}" "${@:2}"; }
big_as() { nice -n "${BENCH_BIG_NICE:-0}" "$BIN/ferry" -s "$ADDR" -u "$1" ${FERRY_FINGERPRINT:+--fingerprint "$FERRY_FINGERPRINT"} "${PLAIN[@]}" "${@:2}"; }
quiet=() loaded=()
# One untimed put first: the first after ferryd starts is 3-4x slower
# (its database and the user's namespace start cold), which made every
# round 0 "quiet" time an outlier.
ferry_as tree put -r "$TREE" /warm >/dev/null 2>>"$D/load.err"
for ((r = 0; r < RUNS; r++)); do
    s=$(date +%s.%N); ferry_as tree put -r "$TREE" "/q$r" >/dev/null 2>>"$D/load.err"; e=$(date +%s.%N)
    quiet+=("$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.2f", b - a}')")
    big_as victim put --on-conflict overwrite "$BIG" /big3g >/dev/null 2>>"$D/load.err" & BG+=($!)
    sleep 3
    log "round $r: load $(cut -d' ' -f1-3 /proc/loadavg)"
    s=$(date +%s.%N); ferry_as tree put -r "$TREE" "/l$r" >/dev/null 2>>"$D/load.err"; e=$(date +%s.%N)
    loaded+=("$(awk -v a="$s" -v b="$e" 'BEGIN {printf "%.2f", b - a}')")
    log "round $r: quiet ${quiet[-1]} s, loaded ${loaded[-1]} s"
    wait "${BG[@]}" || true; BG=()
done
qm=$(printf '%s\n' "${quiet[@]}" | median) lm=$(printf '%s\n' "${loaded[@]}" | median)
row "$TREE_FILES-file tree put, quiet vs while another user uploads ${BIG_MIB} MiB" \
    "quiet ${qm} s ($(printf '%s\n' "${quiet[@]}" | range)), loaded ${lm} s ($(printf '%s\n' "${loaded[@]}" | range))" \
    "$(awk -v a="$lm" -v b="$qm" 'BEGIN {printf "%.2fx", a / b}')"
fi

{
    echo "| scenario | result | memory / ratio |"
    echo "|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "$D/results.md"
