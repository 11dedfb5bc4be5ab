#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions are called indirectly by measure()
# Ferry loopback benchmark: Ferry vs OpenSSH sftp, rsync-over-ssh and raw nc.
#
# Usage: tests/bench/run.sh [--quick]
#   --quick   256 MiB file and 2,000 small files instead of 1 GiB and 10,000.
#
# Environment:
#   FERRY_BIN_DIR     directory holding ferry and ferryd; set it to skip
#                     `cargo build --release --bins` (default: target/release;
#                     the ls_latency example is built when missing)
#   BENCH_PLAINTEXT   1 to run Ferry without TLS (--insecure-plaintext on
#                     both ends); by default Ferry runs over TLS 1.3, the
#                     client pinned to ferryd's fingerprint
#   FERRY_EXTRA_ARGS  extra global args for every `ferry` call
#   FERRYD_EXTRA_ARGS extra args for `ferryd serve`
#   BENCH_DIR         scratch dir; test data is generated once and reused
#                     (default: /tmp/ferry-bench)
#   BENCH_RUNS        timed runs per measurement, the median is reported (3)
#   BENCH_LS_CALLS    `ferry ls /` calls timed for the latency figure (7)
#   BENCH_SCRAM_ITERATIONS  PBKDF2 iterations for the bench user (default:
#                     ferryd's own, 100000; the minimum 4096 shows what `ls`
#                     costs without the client's key derivation)
#
# Prints a markdown table on stdout (also saved to $BENCH_DIR/results.md);
# progress goes to stderr, command output to $BENCH_DIR/bench.log.
# Exit status: 0 when every transfer worked (targets may be MISSed),
# 1 when a transfer failed or a checksum differed, 2 on a setup error.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-bench}")   # absolute: sshd chdirs to /
RUNS=${BENCH_RUNS:-3}
LS_CALLS=${BENCH_LS_CALLS:-7}
CIPHER=aes128-gcm@openssh.com
FERRY_PW=benchpw
QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1
[[ $# -gt 1 || ( $# -eq 1 && $QUICK -eq 0 ) ]] && { echo "usage: $0 [--quick]" >&2; exit 2; }

# The one place that knows how to invoke the Ferry client.
ferry_cmd() {
    # shellcheck disable=SC2086  # FERRY_EXTRA_ARGS is meant to be split
    FERRY_PASSWORD=$FERRY_PW FERRY_KNOWN_SERVERS=$D/known_servers \
        "$BIN/ferry" -s "127.0.0.1:$FERRY_PORT" -u bench $FERRY_TRUST ${FERRY_EXTRA_ARGS:-} "$@"
}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }
FERRY_TRUST=''   # set once ferryd runs: --fingerprint ... or --insecure-plaintext
PLAIN_ARGS=()
[[ ${BENCH_PLAINTEXT:-0} == 1 ]] && PLAIN_ARGS=(--insecure-plaintext)
FAILED=0
# Every tree run writes a fresh destination (tree-1, tree-2, ...); all are
# removed at the end. Deleting the previous run's tree just before the next
# one, as this script once did, made every tool slow down run after run:
# without a journal (as on this VM's root), ext4 skips inodes freed in the
# last 30 s or so when it allocates (`recently_deleted`), so the timings
# measured the allocator searching past 10,000-30,000 fresh corpses.
TREE_N=0
next_tree() { TREE_N=$((TREE_N + 1)); mkdir -p "$D/sshdst"; warm "$TREE"; }
# Every run starts with its source in the page cache. This VM pages out
# file pages untouched for about a minute (DAMON reclaim, kdamond), so
# without this whichever tool ran first after a pause read from disk.
warm() { find "$1" -type f -exec cat {} + >/dev/null; }
fail() { log "FAILED: $*"; FAILED=1; }
declare -A T=()     # measurement name -> median seconds, or FAIL
declare -A BEST=()  # measurement name -> fastest run (least disturbed by a noisy host)
SSHD_PID='' FERRYD_PID='' NC_PID='' BG_PID=''

cleanup() {
    local p
    [[ -n $BG_PID ]] && touch "$D/stop-bg"
    for p in $NC_PID $FERRYD_PID $SSHD_PID $BG_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. dependencies and binaries ---------------------------------------------
install_deps() {
    local need=() pair
    for pair in sshd:openssh-server ssh:openssh-client sftp:openssh-client \
        rsync:rsync nc:netcat-openbsd ss:iproute2; do
        command -v "${pair%%:*}" >/dev/null || [[ -x /usr/sbin/${pair%%:*} ]] || need+=("${pair#*:}")
    done
    ((${#need[@]})) || return 0
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
}

build_ferry() {
    if [[ -n ${FERRY_BIN_DIR:-} ]]; then BIN=$FERRY_BIN_DIR; else
        log "cargo build --release --bins"
        (cd "$REPO" && cargo build --release --bins -q) || die "cargo build failed"
        BIN=$REPO/target/release
    fi
    [[ -x $BIN/ferry && -x $BIN/ferryd ]] || die "no ferry/ferryd in $BIN"
    # `ls` latency inside one session (tests/examples/ls_latency.rs)
    # (always built: a stale one may speak an older protocol)
    LS_BIN=$REPO/target/release/examples/ls_latency
    log "cargo build --release --example ls_latency"
    (cd "$REPO" && cargo build --release -p ferry-e2e --example ls_latency -q) \
        || die "cargo build of the ls_latency example failed"
}

# --- 2. test data (generated once, reused) -------------------------------------
make_data() {
    local mib=1024 nfiles=10000 d per
    ((QUICK)) && mib=256 nfiles=2000
    BIG=$D/data/big-${mib}M.bin TREE=$D/data/tree-$nfiles BIG_MIB=$mib NFILES=$nfiles
    mkdir -p "$D/data"
    if [[ ! -f $BIG.sha256 ]]; then
        log "generating $BIG"
        head -c "${mib}M" /dev/urandom >"$BIG.tmp" && mv "$BIG.tmp" "$BIG"
        sha256sum <"$BIG" | cut -d' ' -f1 >"$BIG.sha256"
    fi
    BIG_SHA=$(cat "$BIG.sha256")
    if [[ ! -d $TREE ]]; then
        log "generating $TREE ($nfiles x 4 KiB in 100 dirs)"
        rm -rf "$TREE.tmp"; per=$((nfiles / 100))
        for ((d = 0; d < 100; d++)); do
            mkdir -p "$TREE.tmp/d$d"
            head -c $((per * 4096)) /dev/urandom | split -b 4096 -a 4 -d - "$TREE.tmp/d$d/f"
        done
        mv "$TREE.tmp" "$TREE"
    fi
}

# --- 3. private sshd (tests/bench/lib/sshd.sh) ------------------------------------
# shellcheck source=lib/sshd.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/sshd.sh"
sftp_batch() { # sftp_batch "COMMAND": one sftp command in batch mode
    # shellcheck disable=SC2086
    printf '%s\n' "$1" | sftp -q -b - ${SSH_OPTS/-p /-P } 127.0.0.1
}

# --- 4. ferryd -------------------------------------------------------------------
ROOT=$D/ferry-root
CONF=()   # -c FILE when BENCH_SCRAM_ITERATIONS is set
start_ferryd() { # (re)start ferryd; sets FERRYD_PID and FERRY_PORT
    local i
    [[ -n $FERRYD_PID ]] && { kill "$FERRYD_PID"; wait "$FERRYD_PID" 2>/dev/null || true; }
    : >"$D/ferryd.out"
    # shellcheck disable=SC2086
    "$BIN/ferryd" serve "${CONF[@]}" --root "$ROOT" --listen 127.0.0.1:0 "${PLAIN_ARGS[@]}" ${FERRYD_EXTRA_ARGS:-} \
        >"$D/ferryd.out" 2>>"$D/ferryd.log" & FERRYD_PID=$!
    for ((i = 0; i < 100; i++)); do
        FERRY_PORT=$(sed -n '1s/^listening on .*:\([0-9]*\)$/\1/p' "$D/ferryd.out")
        if [[ -n $FERRY_PORT ]]; then
            if [[ ${#PLAIN_ARGS[@]} -gt 0 ]]; then
                FERRY_TRUST=--insecure-plaintext
            else
                FERRY_TRUST="--fingerprint $("$BIN/ferryd" fingerprint "${CONF[@]}" --root "$ROOT")"
            fi
            return 0
        fi
        sleep 0.05
    done
    fail "ferryd did not start, see $D/ferryd.log"; return 1
}
setup_ferryd() {
    rm -rf "$ROOT"; mkdir -p "$ROOT"
    if [[ -n ${BENCH_SCRAM_ITERATIONS:-} ]]; then
        printf '[auth]\niterations = %s\n' "$BENCH_SCRAM_ITERATIONS" >"$D/ferryd.toml"
        CONF=(-c "$D/ferryd.toml")
    fi
    printf '%s\n' "$FERRY_PW" | "$BIN/ferryd" user add "${CONF[@]}" bench --root "$ROOT" >>"$LOG" 2>&1 \
        || { fail "ferryd user add"; return 1; }
    start_ferryd || return 1
    ferry_cmd ls / >/dev/null 2>>"$LOG" || { fail "ferry ls / (login?), see $LOG"; tail -n 2 "$LOG" >&2; return 1; }
    log "ferryd on 127.0.0.1:$FERRY_PORT"
}

# --- 5. timing -------------------------------------------------------------------
# interleave "NAME PREP RUN [CHECK [SETTLE]]"...: BENCH_RUNS rounds; each
# round runs every spec once, in turn, so a slow spell of this shared host
# hits all tools alike instead of one tool's whole series. Each run: PREP
# (untimed; clears the destination), sync, then RUN (timed); with SETTLE,
# RUN starts no sooner than SETTLE seconds after PREP did. CHECK verifies
# the last round's result, right after it. The median wall time goes to
# T[NAME], the fastest to BEST[NAME]; a failure sets T[NAME]=FAIL.
declare -A TIMES=()
interleave() {
    local i spec name prep run check settle t0 t1
    for spec in "$@"; do read -r name _ <<<"$spec"; TIMES[$name]=''; unset "T[$name]"; done
    log "$(for spec in "$@"; do read -r name _ <<<"$spec"; printf '%s ' "$name"; done)..."
    for ((i = 0; i < RUNS; i++)); do
        for spec in "$@"; do
            read -r name prep run check settle <<<"$spec"
            check=${check:-true} settle=${settle:-0}
            [[ ${T[$name]:-} == FAIL ]] && continue
            t0=$(now)
            $prep >>"$LOG" 2>&1 || true
            sync
            awk -v a="$t0" -v b="$(now)" -v s="$settle" 'BEGIN { d = s - (b - a); if (d > 0) system("sleep " d) }'
            t0=$(now)
            if ! $run >>"$LOG" 2>&1; then
                T[$name]=FAIL; fail "$name (last lines of $LOG below)"; tail -n 5 "$LOG" >&2; continue
            fi
            t1=$(now)
            TIMES[$name]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
            if ((i == RUNS - 1)) && ! $check >>"$LOG" 2>&1; then
                T[$name]=FAIL; fail "$name: result differs from source"
            fi
        done
    done
    for spec in "$@"; do
        read -r name _ <<<"$spec"
        [[ ${T[$name]:-} == FAIL ]] && continue
        T[$name]=$(printf '%s\n' ${TIMES[$name]} | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
        BEST[$name]=$(printf '%s\n' ${TIMES[$name]} | sort -n | head -n 1)
        log "$name: ${TIMES[$name]}s -> median ${T[$name]} s"
    done
}
same_sha() { [[ $(sha256sum <"$1" | cut -d' ' -f1) == "$BIG_SHA" ]]; }
same_size() { [[ $(stat -c %s "$1") == $((BIG_MIB * 1048576)) ]]; }
same_tree() { diff -rq "$TREE" "$1"; }

# Ferry (paths on the server are relative to the user's home)
ferry_rm_big() { warm "$BIG"; ferry_cmd rm /big.bin; }
ferry_put_big() { ferry_cmd put "$BIG" /big.bin --on-conflict overwrite; }
ferry_get_big() { ferry_cmd get /big.bin "$D/dl/big.bin" --on-conflict overwrite; }
ferry_get_rehash() { ferry_cmd get --rehash /big.bin "$D/dl/big.bin" --on-conflict overwrite; }
ferry_put_tree() { ferry_cmd put -r "$TREE" "/tree-$TREE_N"; }
rm_dl() { warm "$BIG"; warm "$ROOT/home/bench/big.bin"; rm -f "$D/dl/big.bin"; }
check_dl() { same_sha "$D/dl/big.bin"; }
check_ferry_tree() { same_tree "$ROOT/home/bench/tree-$TREE_N"; }
# sftp and rsync (the "remote" side is $D/sshdst on this machine)
rm_sshdst() { warm "$BIG"; rm -rf "$D/sshdst"; mkdir -p "$D/sshdst"; }
sftp_put_big() { sftp_batch "put $BIG $D/sshdst/big.bin"; }
sftp_get_big() { sftp_batch "get $BIG $D/dl/big.bin"; }
sftp_put_tree() { sftp_batch "put -r $TREE $D/sshdst/tree-$TREE_N"; }
rsync_tree() { rsync -a -e "ssh $SSH_OPTS" "$TREE/" "127.0.0.1:$D/sshdst/tree-$TREE_N/"; }
check_sftp_big() { same_size "$D/sshdst/big.bin"; }
check_dl_size() { same_size "$D/dl/big.bin"; }
check_ssh_tree() { same_tree "$D/sshdst/tree-$TREE_N"; }
# tree downloads: Ferry's last uploaded tree, pulled into fresh local trees
DL_N=0
next_dl_tree() { DL_N=$((DL_N + 1)); warm "$ROOT/home/bench/$GET_TREE"; }
ferry_get_tree() { ferry_cmd get -r "/$GET_TREE" "$D/dl/tree-$DL_N"; }
rsync_pull_tree() { rsync -a -e "ssh $SSH_OPTS" "127.0.0.1:$ROOT/home/bench/$GET_TREE/" "$D/dl/tree-$DL_N/"; }
check_dl_tree() { same_tree "$D/dl/tree-$DL_N"; }
# raw TCP: the receiver listens; "put" pushes to it, "get" pulls from a sender
nc_new_port() { [[ -z $NC_PID ]] || kill "$NC_PID" 2>/dev/null || true; NC_PORT=$(free_port 24000); }
nc_prep_put() { warm "$BIG"; rm -f "$D/nc.out"; nc_new_port
    nc -l 127.0.0.1 "$NC_PORT" >"$D/nc.out" & NC_PID=$!; wait_listen "$NC_PORT"; }
nc_put() { nc -N 127.0.0.1 "$NC_PORT" <"$BIG" && wait "$NC_PID" && NC_PID=''; }
nc_prep_get() { rm_dl; nc_new_port
    nc -N -l 127.0.0.1 "$NC_PORT" <"$BIG" & NC_PID=$!; wait_listen "$NC_PORT"; }
nc_get() { nc -d 127.0.0.1 "$NC_PORT" >"$D/dl/big.bin" && wait "$NC_PID" && NC_PID=''; }
check_nc_put() { same_size "$D/nc.out"; }

# ferryd's peak RSS over the 1 GiB puts: read after the puts of a fresh
# ferryd (`setup_ferryd` starts one), before anything else ran on it.
ferry_rss() {
    [[ ${T[ferry_put_big]:-FAIL} == FAIL ]] && return 0   # an idle server's RSS means nothing
    RSS_KIB=$(awk '/^VmHWM/ { print $2 }' "/proc/$FERRYD_PID/status")
}

# Median wall time (ms) of `ferry ls /`, idle and while a put loops in the
# background. Each call includes process start and login (SCRAM).
ls_median_ms() {
    local i t0 t1 ms=()
    for ((i = 0; i < LS_CALLS; i++)); do
        t0=$(now); ferry_cmd ls / >/dev/null || { echo FAIL; return; }; t1=$(now)
        ms+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
    done
    log "ls /: ${ms[*]} ms"
    printf '%s\n' "${ms[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
ls_latency() {
    log "ls latency, idle"; LS_IDLE=$(ls_median_ms)
    [[ $LS_IDLE == FAIL ]] && fail "ferry ls /"
    log "ls latency, during a put"
    rm -f "$D/stop-bg" "$D/bg-failed"
    (while [[ ! -e $D/stop-bg ]]; do
        ferry_cmd put "$BIG" /bg.bin --on-conflict overwrite || { touch "$D/bg-failed"; break; }
    done) >>"$LOG" 2>&1 & BG_PID=$!
    sleep 0.3
    LS_BUSY=$(ls_median_ms)
    touch "$D/stop-bg"; wait "$BG_PID" || true; BG_PID=''
    [[ $LS_BUSY == FAIL ]] && fail "ferry ls / during a put"
    [[ -e $D/bg-failed ]] && { LS_BUSY=FAIL; fail "background put for the ls latency"; }
    ferry_cmd rm /bg.bin >>"$LOG" 2>&1 || true
    # What a TUI user feels: `ls` in the session that is uploading.
    log "ls latency, in the session of a put"
    local fp=() out
    [[ $FERRY_TRUST == --fingerprint* ]] && fp=(env "FERRY_FINGERPRINT=${FERRY_TRUST#--fingerprint }")
    if out=$(FERRY_PASSWORD=$FERRY_PW "${fp[@]}" "$LS_BIN" "127.0.0.1:$FERRY_PORT" bench "$BIG" 2>>"$LOG"); then
        LS_SESSION=${out%% *} LS_SESSION_MAX=${out##* }
        log "ls / in session: median $LS_SESSION ms, max $LS_SESSION_MAX ms"
    else
        fail "ls_latency (see $LOG)"
    fi
}

# --- 6. report -------------------------------------------------------------------
# row LABEL FERRY_TIME PEER PEER_TIME MAX_RATIO|-  (- = no target, info only)
# Times are "median (best)"; the verdict goes by the ratio of medians.
row() {
    local r=- rb=- verdict
    if [[ $2 == FAIL || $4 == FAIL ]]; then verdict=FAIL
    else
        r=$(awk -v f="$2" -v p="$4" 'BEGIN { printf "%.2f", f / p }')
        rb=$(awk -v f="$6" -v p="$7" 'BEGIN { printf "%.2f", f / p }')
        if [[ $5 == - ]]; then verdict=info
        else verdict=$(awk -v r="$r" -v m="$5" 'BEGIN { print (r <= m ? "PASS" : "MISS") }'); fi
    fi
    printf '| %s | %s (%s) | %s %s (%s) | %s (%s) | %s | %s |\n' "$1" "$2" "$6" "$3" "$4" "$7" "$r" "$rb" \
        "$([[ $5 == - ]] && echo - || echo "<= ${5}x")" "$verdict"
}
# trow LABEL FERRY_KEY PEER PEER_KEY MAX_RATIO|-
trow() { row "$1" "${T[$2]:-FAIL}" "$3" "${T[$4]:-FAIL}" "$5" "${BEST[$2]:-FAIL}" "${BEST[$4]:-FAIL}"; }
report() {
    local size="$BIG_MIB MiB" tree="$NFILES x 4 KiB" rss_mib=FAIL v
    ((BIG_MIB == 1024)) && size="1 GiB"
    # Targets: 0.6x sftp in plaintext (issue 3), 0.7x over TLS (issue 4).
    local mode="TLS 1.3 (ring, AES-GCM)" big_target=0.7
    [[ ${#PLAIN_ARGS[@]} -gt 0 ]] && mode="plaintext (--insecure-plaintext)" big_target=0.6
    echo "Ferry loopback benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, median of $RUNS runs, Ferry over $mode"
    echo
    echo "| transfer | Ferry (s), median (best) | peer (s), median (best) | Ferry / peer, medians (bests) | target | result |"
    echo "|---|---|---|---|---|---|"
    trow "$size put" ferry_put_big sftp sftp_put_big "$big_target"
    trow "$size put" ferry_put_big nc nc_put -
    trow "$size get" ferry_get_big sftp sftp_get_big "$big_target"
    trow "$size get" ferry_get_big nc nc_get -
    trow "$size get, server hashing as it reads (--rehash)" ferry_get_rehash sftp sftp_get_big -
    trow "tree put ($tree)" ferry_put_tree rsync rsync_tree 1.0
    trow "tree put ($tree)" ferry_put_tree sftp sftp_put_tree -
    trow "tree get ($tree)" ferry_get_tree rsync rsync_pull_tree -
    echo
    echo "| measure | value | target | result |"
    echo "|---|---|---|---|"
    [[ -n ${RSS_KIB:-} ]] && rss_mib=$(awk -v k="$RSS_KIB" 'BEGIN { printf "%.1f", k / 1024 }')
    v=$(awk -v x="$rss_mib" 'BEGIN { print (x == "FAIL" ? "FAIL" : x < 64 ? "PASS" : "MISS") }')
    echo "| ferryd peak RSS during $size puts (MiB) | $rss_mib | < 64 | $v |"
    v=$(awk -v x="$LS_SESSION" 'BEGIN { print (x == "FAIL" ? "FAIL" : x < 50 ? "PASS" : "MISS") }')
    echo "| \`ls /\` in the session of a $size put, median (max) (ms) | $LS_SESSION ($LS_SESSION_MAX) | < 50 | $v |"
    echo "| \`ferry ls /\` as a new process (start, TLS, login) during a $size put, median (ms) | $LS_BUSY | - | info |"
    echo "| \`ferry ls /\` as a new process, idle, median (ms) | $LS_IDLE | - | info |"
}

# --- main ------------------------------------------------------------------------
mkdir -p "$D/dl"
LOG=$D/bench.log; : >"$LOG"; : >"$D/ferryd.log"
install_deps || die "apt-get install failed"
build_ferry
make_data
start_sshd

# Each figure's tools run in turn, round by round. Without a working
# ferryd, the peers still run, so their figures are printed.
LS_IDLE=FAIL LS_BUSY=FAIL LS_SESSION=FAIL LS_SESSION_MAX=FAIL
FERRY=1; setup_ferryd || FERRY=''
interleave "sftp_put_big rm_sshdst sftp_put_big check_sftp_big" \
    "nc_put nc_prep_put nc_put check_nc_put" \
    ${FERRY:+"ferry_put_big ferry_rm_big ferry_put_big"}
[[ $FERRY ]] && ferry_rss
interleave "sftp_get_big rm_dl sftp_get_big check_dl_size" \
    "nc_get nc_prep_get nc_get check_dl_size" \
    ${FERRY:+"ferry_get_big rm_dl ferry_get_big check_dl"} \
    ${FERRY:+"ferry_get_rehash rm_dl ferry_get_rehash check_dl"}
rm -rf "$D/sshdst"
interleave "sftp_put_tree next_tree sftp_put_tree check_ssh_tree" \
    "rsync_tree next_tree rsync_tree check_ssh_tree" \
    ${FERRY:+"ferry_put_tree next_tree ferry_put_tree check_ferry_tree"}
if [[ $FERRY ]] && [[ ${T[ferry_put_tree]:-FAIL} != FAIL ]]; then
    GET_TREE=tree-$TREE_N   # Ferry's tree of the last round
    interleave "rsync_pull_tree next_dl_tree rsync_pull_tree check_dl_tree" \
        "ferry_get_tree next_dl_tree ferry_get_tree check_dl_tree"
fi
log "removing the trees"
rm -rf "$D/sshdst" "$ROOT/home/bench"/tree-* "$D/dl"/tree-*
[[ $FERRY ]] && ls_latency

report | tee "$D/results.md"
rm -rf "$D/sshdst" "$D/dl" "$D/nc.out" "$ROOT/home/bench/big.bin" "$ROOT/home/bench"/tree-*
exit "$FAILED"
