#!/usr/bin/env bash
# The native S3 client baseline (issue 14, section 4): a big file put and got
# straight through a SeaweedFS S3 gateway by
#   boto3      boto3's default transfer config (8 MiB parts, 10 threads)
#   boto3-8x8  boto3 with 8 MiB parts and 8 threads
#   awscli     `aws s3 cp` (AWS CLI v1 from PyPI, its defaults: 8 MiB parts,
#              10 requests at once)
#   ferry      with FERRY_BIN_DIR: `ferry put`/`ferry get` through one ferryd
#              serving homes from the same cluster (--store s3://ferry/
#              bench-ferry; 8 MiB parts, trash grace 10 s, sweeper every
#              1 s), then `ferry rm` and a wait until the sweeper deleted
#              the blob. (Grace 0 loses files: the sweeper takes a blob
#              stored a moment before its row is committed for an orphan.)
# Ferry through ferryd's S3 store is to reach at least 0.9x of these.
# Scenarios (all by default; name some to run only those):
#   --big     the big file, every tool, per round; with ferry also ferryd's
#             peak RSS (VmHWM, reset before each put via clear_refs)
#   --tree    a tree of 10,000 files of 4 KiB (20 directories), per round:
#             `ferry put -r` (then `ferry rm -r` and the sweeper's cleanup)
#             and boto3 with 32 threads, one PUT per file (for context)
#   --rss64   with ferry: 64 `ferry put` processes of one 20 MiB file
#             started at once, 8 users x 8 (so the server's 8 part buffers
#             are all in use), ferryd's peak RSS and the wall time
#
# Usage: tests/bench/s3_native.sh [--quick] [--big] [--tree] [--rss64]
#   --quick   a 256 MiB file instead of 1 GiB, a tree of 1,000 files
#
# Environment:
#   SEAWEEDFS_DIR   the DIR of a store started by tests/scripts/seaweedfs.sh
#                   (its env and master are used); unset: a cluster is
#                   started in $BENCH_DIR/store and removed at the end
#   SEAWEEDFS_VENV  the venv with weed and boto3 (default $BENCH_DIR/venv,
#                   made by `seaweedfs.sh install`); awscli is pip-installed
#                   into it unless BENCH_AWSCLI=0
#   BENCH_DIR       scratch dir (default /tmp/ferry-s3-bench); the test file
#                   is generated there once and reused
#   BENCH_RUNS      rounds (3): median and range are reported
#   FERRY_BIN_DIR   directory holding release builds of ferry and ferryd;
#                   unset: native clients only (no rss64)
#   BENCH_TREE_FILES     files in the tree (10,000; 1,000 with --quick)
#   BENCH_RSS_MIB        size of each of the 64 files of --rss64 (20)
#   BENCH_TRASH_GRACE    ferryd's [store] trash_grace_secs (10)
#   BENCH_LIMITS    more lines for ferryd's [limits] (e.g. bulk_nice = 0)
#   BENCH_STORE     more lines for ferryd's [store] (e.g.
#                   "max_part_buffers_per_user = 2")
#   BENCH_FERRY_TIMEOUT  seconds a `ferry` call may take (180); a tree put
#                   that fails or hangs restarts ferryd (see the report)
#
# Each round runs every tool in turn (put, get, then delete the object), so
# a slow spell of the host hits them all alike; before each timed run the
# source is read into the page cache and `sync` runs, both untimed. A time
# is the wall time of the whole client process (start, import, transfer),
# as for `ferry put`. Every get is compared (SHA-256) with the source.
# After each tool the object is deleted and its space reclaimed (volume
# vacuum, untimed): at most one copy of the file is in the store (twice
# on disk, replication 001), plus the source and the got copy.
# ferryd's root, config, secret key file (0600) and log are in
# $BENCH_DIR/ferry; it listens on 127.0.0.1 and is stopped at the end.
# Prints markdown tables on stdout (also in $BENCH_DIR/results.md);
# progress on stderr, command output in $BENCH_DIR/bench.log.
# Exit status: 0 when every run worked, 1 when one failed, 2 on a setup error.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-s3-bench}")
RUNS=${BENCH_RUNS:-3}
SIZE_MIB=1024
NFILES=10000
declare -A WANT=()
for arg in "$@"; do
    case $arg in
        --quick) SIZE_MIB=256 NFILES=1000 ;;
        --big | --tree | --rss64) WANT[${arg#--}]=1 ;;
        *)
            echo "usage: $0 [--quick] [--big] [--tree] [--rss64]" >&2
            exit 2
            ;;
    esac
done
NFILES=${BENCH_TREE_FILES:-$NFILES}
[[ ${#WANT[@]} -gt 0 ]] || WANT=([big]=1 [tree]=1 [rss64]=1)
BIN=${FERRY_BIN_DIR:-}
if [[ -n $BIN ]]; then
    [[ -x $BIN/ferry && -x $BIN/ferryd ]] || {
        echo "no ferry/ferryd in $BIN" >&2
        exit 2
    }
    BIN=$(realpath "$BIN")
else
    unset 'WANT[rss64]'
fi
SW=$REPO/tests/scripts/seaweedfs.sh

log() { printf '[s3-native-bench] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 2
}
now() { date +%s.%N; }
FAILED=0
OWN_STORE=''

FERRYD_PID=''
cleanup() {
    if [[ -n $FERRYD_PID ]]; then
        kill "$FERRYD_PID" 2>/dev/null || true
        wait "$FERRYD_PID" 2>/dev/null || true
    fi
    if [[ -n $OWN_STORE ]]; then
        bash "$SW" stop "$OWN_STORE" >/dev/null 2>&1 || true
        rm -rf "$OWN_STORE"
    fi
    rm -rf "$D/get.bin" "$D/ferry/root" "$D/ferry/secret"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -----------------------------------------------------------------------
mkdir -p "$D"
LOG=$D/bench.log
: >"$LOG"
export SEAWEEDFS_VENV=${SEAWEEDFS_VENV:-$D/venv}
bash "$SW" install "$SEAWEEDFS_VENV" >>"$LOG" 2>&1 || die "seaweedfs.sh install failed, see $LOG"
PY=$SEAWEEDFS_VENV/bin/python3
TOOLS=(boto3 boto3-8x8)
if [[ ${BENCH_AWSCLI:-1} != 0 ]]; then
    if [[ ! -x $SEAWEEDFS_VENV/bin/aws ]]; then
        log "pip install awscli"
        "$SEAWEEDFS_VENV/bin/pip" install -q --disable-pip-version-check awscli >>"$LOG" 2>&1 ||
            die "pip install awscli failed, see $LOG"
    fi
    TOOLS+=(awscli)
fi

if [[ -n ${SEAWEEDFS_DIR:-} ]]; then
    STORE=$SEAWEEDFS_DIR
else
    STORE=$D/store
    OWN_STORE=$STORE
    bash "$SW" stop "$STORE" >/dev/null 2>&1 || true
    rm -rf "$STORE"
    log "starting a SeaweedFS cluster in $STORE"
    bash "$SW" start "$STORE" cluster >>"$LOG" 2>&1 || die "the cluster did not start, see $LOG"
fi
ENV_LINES=$(bash "$SW" env "$STORE") || die "no store in $STORE"
while IFS= read -r line; do export "${line?}"; done <<<"$ENV_LINES"
# Only the store's own settings: no ~/.aws config or profile.
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE
MASTER_PORT=$(sed -n 's/^MASTER_PORT=//p' "$STORE/ports.env")

SRC=$D/data/big-$SIZE_MIB.bin
if [[ -n ${WANT[big]:-} && ! -f $SRC ]]; then
    log "generating $SRC ($SIZE_MIB MiB)"
    mkdir -p "$D/data"
    head -c $((SIZE_MIB << 20)) /dev/urandom >"$SRC.tmp"
    mv "$SRC.tmp" "$SRC"
fi
[[ -n ${WANT[big]:-} ]] && SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)
NATIVE=("${TOOLS[@]}")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- ferryd on the same cluster ----------------------------------------------------
FD=$D/ferry
PW=bench-password
FPREFIX=bench-ferry
NRSS=64 RSS_USERS=8 RSS_MIB=${BENCH_RSS_MIB:-20}
ferryd() { # the secret only from the 0600 file, not the environment
    env -u AWS_SECRET_ACCESS_KEY "$BIN/ferryd" "$@" -c "$FD/ferryd.toml" --root "$FD/root" \
        --store "s3://$FERRY_TEST_S3_BUCKET/$FPREFIX"
}
ferry_as() { # ferry_as USER ARGS...: the client as USER
    local user=$1
    shift
    FERRY_PASSWORD=$PW FERRY_KNOWN_SERVERS=$FD/known-$user \
        timeout -k 5 "${BENCH_FERRY_TIMEOUT:-180}" "$BIN/ferry" -s "$FADDR" -u "$user" --fingerprint "$FP" "$@"
}
py() { "$PY" "$REPO/tests/bench/s3_native.py" "$@"; }
kib() { awk -v k="$1" '/^'"$1"':/ { print $2 }' "/proc/$FERRYD_PID/status"; }
reset_peak() { echo 5 >"/proc/$FERRYD_PID/clear_refs"; }
# wait_swept: until no blob is left under ferryd's prefix (`ferry rm` moved
# them to the trash; the sweeper, grace 0, deletes them within a second or so).
wait_swept() {
    local i n=?
    for ((i = 0; i < 240; i++)); do
        n=$(py count "$FPREFIX/" 2>>"$LOG") || n=?
        [[ $n == 0 ]] && return 0
        sleep 0.5
    done
    log "FAILED: $n blobs left under $FPREFIX/ two minutes after rm"
    FAILED=1
    return 1
}
# start_ferryd: serve (again, after a stop) on the root; sets FERRYD_PID, FADDR
start_ferryd() {
    local i
    env -u AWS_SECRET_ACCESS_KEY "$BIN/ferryd" serve -c "$FD/ferryd.toml" --root "$FD/root" \
        --store "s3://$FERRY_TEST_S3_BUCKET/$FPREFIX" --listen 127.0.0.1:0 >"$FD/out" 2>>"$FD/ferryd.log" &
    FERRYD_PID=$!
    FADDR=''
    for ((i = 0; i < 200; i++)); do
        FADDR=$(sed -n '1s/^listening on //p' "$FD/out")
        [[ -n $FADDR ]] && break
        kill -0 "$FERRYD_PID" 2>/dev/null || die "ferryd stopped, see $FD/ferryd.log"
        sleep 0.05
    done
    [[ -n $FADDR ]] || die "ferryd did not start, see $FD/ferryd.log"
}
# restart_ferryd WHY: a ferryd that stopped answering is killed (its threads
# kept for the record in $FD/stuck-N.txt when gdb is there) and started again
RESTARTS=0
restart_ferryd() {
    RESTARTS=$((RESTARTS + 1))
    log "ferryd restarted: $1"
    command -v gdb >/dev/null &&
        timeout 60 gdb -p "$FERRYD_PID" -batch -ex 'thread apply all bt 30' >"$FD/stuck-$RESTARTS.txt" 2>&1
    kill -9 "$FERRYD_PID" 2>/dev/null || true
    wait "$FERRYD_PID" 2>/dev/null || true
    start_ferryd
}
if [[ -n $BIN ]]; then
    TOOLS+=(ferry)
    rm -rf "$FD"
    mkdir -p "$FD"
    (
        umask 077
        printf '%s\n' "$AWS_SECRET_ACCESS_KEY" >"$FD/secret"
    )
    cat >"$FD/ferryd.toml" <<TOML
[limits]
# --rss64: 64 clients log in at once from 127.0.0.1
max_unauthenticated_per_ip = 128
${BENCH_LIMITS:-}
[store]
endpoint = "$AWS_ENDPOINT_URL"
region = "$AWS_REGION"
access_key_id = "$AWS_ACCESS_KEY_ID"
secret_access_key_file = "$FD/secret"
trash_grace_secs = ${BENCH_TRASH_GRACE:-10}
sweep_every_secs = 1
${BENCH_STORE:-}
TOML
    users=(bench)
    [[ -n ${WANT[rss64]:-} ]] && for ((u = 0; u < RSS_USERS; u++)); do users+=("rss$u"); done
    for u in "${users[@]}"; do
        printf '%s\n' "$PW" | ferryd user add "$u" >>"$LOG" 2>&1 || die "ferryd user add $u failed, see $LOG"
    done
    start_ferryd
    FP=$(ferryd fingerprint) || die "ferryd fingerprint failed"
    ferry_as bench ls / >>"$LOG" 2>&1 || die "login failed, see $LOG"
    RSS_IDLE=$(kib VmRSS)
    log "ferryd $FERRYD_PID on $FADDR, store s3://$FERRY_TEST_S3_BUCKET/$FPREFIX, RSS $((RSS_IDLE / 1024)) MiB"
fi

# put TOOL KEY / get TOOL KEY: one transfer by one client process.
put() {
    case $1 in
        boto3) py put default "$SRC" "$2" ;;
        boto3-8x8) py put 8x8 "$SRC" "$2" ;;
        awscli) "$SEAWEEDFS_VENV/bin/aws" s3 cp --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" \
            "$SRC" "s3://$FERRY_TEST_S3_BUCKET/$2" ;;
        ferry) ferry_as bench put --on-conflict overwrite "$SRC" "/${2//\//-}" ;;
    esac
}
get() {
    case $1 in
        boto3) py get default "$D/get.bin" "$2" ;;
        boto3-8x8) py get 8x8 "$D/get.bin" "$2" ;;
        awscli) "$SEAWEEDFS_VENV/bin/aws" s3 cp --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" \
            "s3://$FERRY_TEST_S3_BUCKET/$2" "$D/get.bin" ;;
        ferry) ferry_as bench get "/${2//\//-}" "$D/get.bin" ;;
    esac
}
delete() { # delete TOOL KEY
    case $1 in
        ferry) ferry_as bench rm "/${2//\//-}" && wait_swept ;;
        *) "$PY" -c 'import boto3, os, sys
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).delete_object(
    Bucket=os.environ["FERRY_TEST_S3_BUCKET"], Key=sys.argv[1])' "$2" ;;
    esac
}
# Deleted chunks go away in the background; then the volumes are compacted
# so that the rounds do not fill the disk (each object is stored twice).
reclaim() {
    sleep 3
    curl -fs -o /dev/null --max-time 300 \
        "http://127.0.0.1:$MASTER_PORT/vol/vacuum?garbageThreshold=0.0001" || log "vacuum failed (ignored)"
}

# --- timing ----------------------------------------------------------------------
declare -A T=()
time_it() { # time_it KEY CMD...: appends CMD's wall time to T[KEY]
    local key=$1 t0 t1
    shift
    t0=$(now)
    if ! "$@" >>"$LOG" 2>&1; then
        log "FAILED: $key (see $LOG)"
        FAILED=1
        T[$key]+="FAIL "
        return 1
    fi
    t1=$(now)
    T[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
}

# --- the big file ------------------------------------------------------------------
RSS_PUT=0 RSS_GET=0
if [[ -n ${WANT[big]:-} ]]; then
    log "$SIZE_MIB MiB, $RUNS rounds, tools: ${TOOLS[*]}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    for ((r = 1; r <= RUNS; r++)); do
        log "round $r of $RUNS"
        for tool in "${TOOLS[@]}"; do
            key=bench/$tool-$r
            cat "$SRC" >/dev/null
            sync
            [[ $tool == ferry ]] && reset_peak
            if time_it "put $tool" put "$tool" "$key"; then
                [[ $tool == ferry ]] && { k=$(kib VmHWM); ((k > RSS_PUT)) && RSS_PUT=$k; }
                rm -f "$D/get.bin"
                sync
                [[ $tool == ferry ]] && reset_peak
                if time_it "get $tool" get "$tool" "$key"; then
                    [[ $tool == ferry ]] && { k=$(kib VmHWM); ((k > RSS_GET)) && RSS_GET=$k; }
                    if [[ $(sha256sum "$D/get.bin" | cut -d' ' -f1) != "$SRC_SHA" ]]; then
                        log "FAILED: the $tool get differs from the source"
                        FAILED=1
                    fi
                fi
            fi
            rm -f "$D/get.bin"
            delete "$tool" "$key" >>"$LOG" 2>&1 || log "delete $key failed (ignored)"
            reclaim
        done
    done
fi

# --- the tree ----------------------------------------------------------------------
TREE_TOOLS=()
if [[ -n ${WANT[tree]:-} ]]; then
    TREE=$D/data/tree-$NFILES
    if [[ ! -d $TREE ]]; then
        log "generating $TREE ($NFILES x 4 KiB)"
        mkdir -p "$TREE.tmp"
        for ((i = 0; i < NFILES; i++)); do
            d=$TREE.tmp/d$((i / 500))
            [[ -d $d ]] || mkdir -p "$d"
            head -c 4096 /dev/urandom >"$d/f$i"
        done
        mv "$TREE.tmp" "$TREE"
    fi
    [[ -n $BIN ]] && TREE_TOOLS+=(ferry)
    TREE_TOOLS+=(boto3-32)
    tree_check() { # tree_check PREFIX: the store holds NFILES objects under PREFIX
        local n
        n=$(py count "$1" 2>>"$LOG") || n=?
        [[ $n == "$NFILES" ]] || {
            log "FAILED: $n objects under $1 after the tree put, not $NFILES"
            FAILED=1
            sleep 3
            log "  and 3 s later: $(py count "$1" 2>>"$LOG")"
            [[ $1 == "$FPREFIX/" ]] && log "  ferry ls: $(for d in "$TREE"/*; do ferry_as bench ls "/tree/${d##*/}"; done 2>&1 | grep -c .) names"
        }
    }
    log "tree: $NFILES x 4 KiB, $RUNS rounds, tools: ${TREE_TOOLS[*]}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    for ((r = 1; r <= RUNS; r++)); do
        log "tree round $r of $RUNS"
        find "$TREE" -type f -exec cat {} + >/dev/null
        for tool in "${TREE_TOOLS[@]}"; do
            case $tool in
                ferry)
                    if time_it "tree ferry" ferry_as bench put -r "$TREE" /tree; then
                        tree_check "$FPREFIX/"
                    else
                        restart_ferryd "the tree put failed or hung (round $r)"
                    fi
                    ferry_as bench rm -r /tree >>"$LOG" 2>&1 || log "FAILED: ferry rm -r /tree"
                    wait_swept || true
                    ;;
                boto3-32)
                    time_it "tree boto3-32" py tree-put "$TREE" "bench/tree-$r" && tree_check "bench/tree-$r/"
                    py delete-prefix "bench/tree-$r/" >>"$LOG" 2>&1 || log "delete bench/tree-$r/ failed (ignored)"
                    ;;
            esac
            reclaim
        done
    done
fi

# --- 64 uploads at once --------------------------------------------------------------
RSS64=''
if [[ -n ${WANT[rss64]:-} ]]; then
    F20=$D/data/f$RSS_MIB.bin
    [[ -f $F20 ]] || head -c $((RSS_MIB << 20)) /dev/urandom >"$F20"
    cat "$F20" >/dev/null
    log "rss64: $NRSS x $RSS_MIB MiB at once ($RSS_USERS users), load: $(cut -d' ' -f1-3 /proc/loadavg)"
    reset_peak
    t0=$(now)
    pids=()
    for ((i = 0; i < NRSS; i++)); do
        ferry_as "rss$((i % RSS_USERS))" put --on-conflict overwrite "$F20" "/c$i.bin" >>"$LOG" 2>&1 &
        pids+=($!)
    done
    RSS64_FAILS=0
    for p in "${pids[@]}"; do wait "$p" || RSS64_FAILS=$((RSS64_FAILS + 1)); done
    t1=$(now)
    RSS64=$(kib VmHWM)
    RSS64_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    ((RSS64_FAILS == 0)) || {
        log "FAILED: $RSS64_FAILS of the $NRSS uploads"
        FAILED=1
    }
    n=$(py count "$FPREFIX/" 2>>"$LOG") || n=?
    [[ $n == "$NRSS" ]] || {
        log "FAILED: $n blobs after the $NRSS uploads"
        FAILED=1
    }
    for ((u = 0; u < RSS_USERS; u++)); do
        files=()
        for ((i = u; i < NRSS; i += RSS_USERS)); do files+=("/c$i.bin"); done
        ferry_as "rss$u" rm "${files[@]}" >>"$LOG" 2>&1 || log "FAILED: ferry rm as rss$u"
    done
    wait_swept || true
    reclaim
fi

PENDING=''
if [[ -n $BIN ]]; then
    PENDING=$(bash "$SW" pending "$STORE" "$FPREFIX/" 2>>"$LOG") || PENDING='(pending: listing failed)'
    [[ -z $PENDING ]] || {
        log "FAILED: multipart uploads left under $FPREFIX/:"
        printf '%s\n' "$PENDING" >&2
        FAILED=1
    }
    grep -E 'ERROR|WARN' "$FD/ferryd.log" | head -20 >&2 || true
fi

# --- report ----------------------------------------------------------------------
# stats "VALUES" AWK-EXPR FORMAT: "median (min-max)" of AWK-EXPR over the
# values (x: the value), or FAIL
stats() {
    [[ -n ${1// /} && $1 != *FAIL* ]] || { echo "FAIL"; return; }
    # shellcheck disable=SC2086  # one value per word
    printf '%s\n' $1 | awk '{ x = $1; print '"$2"' }' | sort -g | awk -v f="$3" '
        { v[NR] = $1 }
        END {
            n = NR; m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf f " (" f "-" f ")\n", m, v[1], v[n]
        }'
}
mibs() { stats "$1" "$SIZE_MIB / x" %.0f; }
median_of() { mibs "$1" | awk '{ print $1 }'; } # a number, or FAIL
# ratio OP: Ferry's median MiB/s over the best native client's, "R (vs TOOL)"
ratio() {
    local op=$1 best=0 bt='' m tool f
    for tool in "${NATIVE[@]}"; do
        m=$(median_of "${T[$op $tool]:-}")
        [[ $m == FAIL ]] && continue
        awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }' && { best=$m bt=$tool; }
    done
    f=$(median_of "${T[$op ferry]:-}")
    [[ $f != FAIL && -n $bt ]] || { echo "n/a"; return; }
    awk -v f="$f" -v b="$best" -v t="$bt" 'BEGIN { printf "%.2fx (vs %s)\n", f / b, t }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
report() {
    echo "SeaweedFS $("$SEAWEEDFS_VENV/bin/weed" version 2>/dev/null | awk '{print $3}') cluster (tests/scripts/seaweedfs.sh), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load (1/5/15 min) $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $RUNS rounds"
    if [[ -n ${WANT[big]:-} ]]; then
        echo
        echo "$SIZE_MIB MiB file, MiB/s median (range):"
        echo
        echo "| client | put | get |"
        echo "|---|---|---|"
        for tool in "${TOOLS[@]}"; do
            echo "| $tool | $(mibs "${T[put $tool]:-}") | $(mibs "${T[get $tool]:-}") |"
        done
        if [[ -n $BIN ]]; then
            echo
            echo "Ferry / best native client (medians): put $(ratio put), get $(ratio get)."
            echo "ferryd RSS: $(mib "$RSS_IDLE") MiB after start; peak (VmHWM) during a $SIZE_MIB MiB put $(mib "$RSS_PUT") MiB, during a get $(mib "$RSS_GET") MiB (highest of the rounds)."
        fi
    fi
    if [[ -n ${WANT[tree]:-} ]]; then
        echo
        echo "Tree put, $NFILES files of 4 KiB in $(((NFILES + 499) / 500)) directories, seconds and files/s, median (range):"
        echo
        echo "| client | seconds | files/s |"
        echo "|---|---|---|"
        for tool in "${TREE_TOOLS[@]}"; do
            echo "| $tool | $(stats "${T[tree $tool]:-}" x %.2f) | $(stats "${T[tree $tool]:-}" "$NFILES / x" %.0f) |"
        done
    fi
    if [[ -n $RSS64 ]]; then
        echo
        echo "$NRSS \`ferry put\` processes of $RSS_MIB MiB at once ($RSS_USERS users x $((NRSS / RSS_USERS))): ferryd peak RSS (VmHWM) $(mib "$RSS64") MiB; all done in $RSS64_SECS s ($(awk -v s="$RSS64_SECS" -v n=$((NRSS * RSS_MIB)) 'BEGIN { printf "%.0f", n / s }') MiB/s together); $RSS64_FAILS failed."
    fi
    if [[ -n $BIN ]]; then
        echo
        ((RESTARTS == 0)) || echo "ferryd was restarted $RESTARTS times after a transfer failed or hung (threads in $FD/stuck-N.txt)."
        echo "Multipart uploads left under $FPREFIX/ at the end: $(if [[ -z $PENDING ]]; then echo none; else wc -l <<<"$PENDING"; fi)."
    fi
}
report | tee "$D/results.md"
exit "$FAILED"
