#!/usr/bin/env bash
# The native S3 client baseline (issue 14, section 4): a big file put and got
# straight through a SeaweedFS S3 gateway by
#   boto3      boto3's default transfer config (8 MiB parts, 10 threads)
#   boto3-8x8  boto3 with 8 MiB parts and 8 threads
#   awscli     `aws s3 cp` (AWS CLI v1 from PyPI, its defaults: 8 MiB parts,
#              10 requests at once)
# Ferry through ferryd's S3 store is to reach at least 0.9x of these.
#
# Usage: tests/bench/s3_native.sh [--quick]
#   --quick   a 256 MiB file instead of 1 GiB
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
#
# Each round runs every tool in turn (put, get, then delete the object), so
# a slow spell of the host hits them all alike; before each timed run the
# source is read into the page cache and `sync` runs, both untimed. A time
# is the wall time of the whole client process (start, import, transfer),
# as for `ferry put`. Every get is compared (SHA-256) with the source.
# After each tool the object is deleted and its space reclaimed (volume
# vacuum, untimed): at most one copy of the file is in the store (twice
# on disk, replication 001), plus the source and the got copy.
# Prints a markdown table on stdout (also in $BENCH_DIR/results.md);
# progress on stderr, command output in $BENCH_DIR/bench.log.
# Exit status: 0 when every run worked, 1 when one failed, 2 on a setup error.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-s3-bench}")
RUNS=${BENCH_RUNS:-3}
SIZE_MIB=1024
[[ ${1:-} == --quick ]] && SIZE_MIB=256
[[ $# -gt 1 || ($# -eq 1 && $SIZE_MIB -eq 1024) ]] && {
    echo "usage: $0 [--quick]" >&2
    exit 2
}
SW=$REPO/tests/scripts/seaweedfs.sh

log() { printf '[s3-native-bench] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 2
}
now() { date +%s.%N; }
FAILED=0
OWN_STORE=''

cleanup() {
    if [[ -n $OWN_STORE ]]; then
        bash "$SW" stop "$OWN_STORE" >/dev/null 2>&1 || true
        rm -rf "$OWN_STORE"
    fi
    rm -f "$D/get.bin"
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
if [[ ! -f $SRC ]]; then
    log "generating $SRC ($SIZE_MIB MiB)"
    mkdir -p "$D/data"
    head -c $((SIZE_MIB << 20)) /dev/urandom >"$SRC.tmp"
    mv "$SRC.tmp" "$SRC"
fi
SRC_SHA=$(sha256sum "$SRC" | cut -d' ' -f1)

# put TOOL KEY / get TOOL KEY: one transfer by one client process.
put() {
    case $1 in
        boto3) "$PY" "$REPO/tests/bench/s3_native.py" put default "$SRC" "$2" ;;
        boto3-8x8) "$PY" "$REPO/tests/bench/s3_native.py" put 8x8 "$SRC" "$2" ;;
        awscli) "$SEAWEEDFS_VENV/bin/aws" s3 cp --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" \
            "$SRC" "s3://$FERRY_TEST_S3_BUCKET/$2" ;;
    esac
}
get() {
    case $1 in
        boto3) "$PY" "$REPO/tests/bench/s3_native.py" get default "$D/get.bin" "$2" ;;
        boto3-8x8) "$PY" "$REPO/tests/bench/s3_native.py" get 8x8 "$D/get.bin" "$2" ;;
        awscli) "$SEAWEEDFS_VENV/bin/aws" s3 cp --only-show-errors --endpoint-url "$AWS_ENDPOINT_URL" \
            "s3://$FERRY_TEST_S3_BUCKET/$2" "$D/get.bin" ;;
    esac
}
delete() {
    "$SEAWEEDFS_VENV/bin/python3" -c 'import boto3, os, sys
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).delete_object(
    Bucket=os.environ["FERRY_TEST_S3_BUCKET"], Key=sys.argv[1])' "$1"
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
log "$SIZE_MIB MiB, $RUNS rounds, tools: ${TOOLS[*]}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= RUNS; r++)); do
    log "round $r of $RUNS"
    for tool in "${TOOLS[@]}"; do
        key=bench/$tool-$r
        cat "$SRC" >/dev/null
        sync
        if time_it "put $tool" put "$tool" "$key"; then
            rm -f "$D/get.bin"
            sync
            if time_it "get $tool" get "$tool" "$key"; then
                if [[ $(sha256sum "$D/get.bin" | cut -d' ' -f1) != "$SRC_SHA" ]]; then
                    log "FAILED: the $tool get differs from the source"
                    FAILED=1
                fi
            fi
        fi
        rm -f "$D/get.bin"
        delete "$key" >>"$LOG" 2>&1 || log "delete $key failed (ignored)"
        reclaim
    done
done

# "median (min-max)" MiB/s of the times in $1.
summary() { # summary "TIMES"
    [[ -n ${1// /} ]] || { echo "FAIL"; return; }
    # shellcheck disable=SC2086  # one time per word
    printf '%s\n' $1 | sort -g | awk -v mib="$SIZE_MIB" '
        /FAIL/ { fail = 1 } { v[NR] = mib / $1 }
        END {
            if (fail || NR == 0) { print "FAIL"; exit }
            n = NR; m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%.0f (%.0f-%.0f)\n", m, v[n], v[1]
        }'
}
report() {
    echo "Native S3 clients on SeaweedFS $("$SEAWEEDFS_VENV/bin/weed" version 2>/dev/null | awk '{print $3}'), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $SIZE_MIB MiB, $RUNS runs each, MiB/s median (range)"
    echo
    echo "| client | put | get |"
    echo "|---|---|---|"
    for tool in "${TOOLS[@]}"; do
        echo "| $tool | $(summary "${T[put $tool]:-}") | $(summary "${T[get $tool]:-}") |"
    done
}
report | tee "$D/results.md"
exit "$FAILED"
