#!/usr/bin/env bash
# What the state store costs: login time and the 10,000-file tree put on
#   sqlite    one ferryd, state in <root>/ferry.db (the default)
#   postgres  one ferryd, state in PostgreSQL (--database)
#   cluster   two ferryd nodes on one root and one PostgreSQL database,
#             HAProxy in front (mode tcp, send-proxy-v2, round robin)
#
# Usage: tests/bench/cluster.sh [--quick]
#   --quick   2,000 small files instead of 10,000
#
# Environment:
#   FERRY_BIN_DIR   directory holding ferry and ferryd; set it to skip
#                   `cargo build --release --bins` (default: target/release)
#   BENCH_DIR       scratch dir (default /tmp/ferry-cluster-bench); the tree
#                   is generated there once and reused
#   BENCH_RUNS      timed runs per figure (3): median and range are reported
#   BENCH_SCRAM_ITERATIONS  PBKDF2 iterations of the bench user (default:
#                   ferryd's own, 100000)
#
# Needs PostgreSQL (tests/scripts/postgres.sh starts a throwaway cluster,
# fsync off) and HAProxy (Debian packages postgresql, haproxy). Prints a
# markdown table on stdout (also in $BENCH_DIR/results.md); progress on
# stderr, command output in $BENCH_DIR/bench.log, ferryd logs beside it.
# Exit status: 0 when every run worked, 1 when one failed, 2 on a setup error.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(realpath -m "${BENCH_DIR:-/tmp/ferry-cluster-bench}")
RUNS=${BENCH_RUNS:-3}
PW=benchpw
NFILES=10000
[[ ${1:-} == --quick ]] && NFILES=2000
[[ $# -gt 1 || ( $# -eq 1 && $NFILES -eq 10000 ) ]] && { echo "usage: $0 [--quick]" >&2; exit 2; }

log() { printf '[cluster-bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }
now() { date +%s.%N; }
FAILED=0
PIDS=()
PGDIR=''

cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n $PGDIR ]] && bash "$REPO/tests/scripts/postgres.sh" stop "$PGDIR/pg" >/dev/null 2>&1 || true
    [[ -n $PGDIR ]] && rm -rf "$PGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -----------------------------------------------------------------------
if [[ -n ${FERRY_BIN_DIR:-} ]]; then BIN=$FERRY_BIN_DIR; else
    log "cargo build --release --bins"
    (cd "$REPO" && cargo build --release --bins -q) || die "cargo build failed"
    BIN=$REPO/target/release
fi
[[ -x $BIN/ferry && -x $BIN/ferryd ]] || die "no ferry/ferryd in $BIN"
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[[ -x $HAPROXY ]] || die "HAProxy not found (apt-get install haproxy)"

mkdir -p "$D"
LOG=$D/bench.log; : >"$LOG"
TREE=$D/data/tree-$NFILES
if [[ ! -d $TREE ]]; then
    log "generating $TREE ($NFILES x 4 KiB in 100 dirs)"
    rm -rf "$TREE.tmp"; per=$((NFILES / 100))
    for ((d = 0; d < 100; d++)); do
        mkdir -p "$TREE.tmp/d$d"
        head -c $((per * 4096)) /dev/urandom | split -b 4096 -a 4 -d - "$TREE.tmp/d$d/f"
    done
    mv "$TREE.tmp" "$TREE"
fi
warm() { find "$1" -type f -exec cat {} + >/dev/null; }

log "starting a throwaway PostgreSQL"
PGDIR=$(mktemp -d)
PGURL=$(bash "$REPO/tests/scripts/postgres.sh" start "$PGDIR/pg") || die "PostgreSQL did not start"
PSQL="$(bash "$REPO/tests/scripts/postgres.sh" bindir)/psql"
newdb() { # newdb NAME: prints the URL of a fresh database NAME
    "$PSQL" -X -q -d "$PGURL" -c "CREATE DATABASE $1" >>"$LOG" 2>&1 || die "CREATE DATABASE $1"
    echo "${PGURL%/*}/$1"
}

port_in_use() { ss -Htan "( sport = :$1 )" | grep -q .; }
free_port() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }

# start_node NAME ROOT CONFIG [--database URL]: a ferryd; sets NODE_PORT
# (not in a subshell: PIDS must keep its pid for the cleanup).
start_node() {
    local name=$1 root=$2 conf=$3 i port
    shift 3
    : >"$D/$name.out"
    "$BIN/ferryd" serve -c "$conf" --root "$root" --listen 127.0.0.1:0 "$@" \
        >"$D/$name.out" 2>>"$D/$name.log" &
    PIDS+=($!)
    for ((i = 0; i < 200; i++)); do
        port=$(sed -n '1s/^listening on .*:\([0-9]*\)$/\1/p' "$D/$name.out")
        [[ -n $port ]] && { NODE_PORT=$port; return 0; }
        sleep 0.05
    done
    die "ferryd $name did not start, see $D/$name.log"
}

# setup NAME TRUSTED NODES [--database URL]: a root with user bench and
# NODES ferryd on it; sets PORT[NAME] (the first node's) and NODE_PORTS.
declare -A PORT=() FP=()
setup() {
    local name=$1 trusted=$2 nodes=$3 root=$D/$1-root conf=$D/$1.toml i
    shift 3
    rm -rf "$root"; mkdir -p "$root"
    {
        [[ -n $trusted ]] && echo "trusted_proxies = [\"$trusted\"]"
        echo "[auth]"
        echo "iterations = ${BENCH_SCRAM_ITERATIONS:-100000}"
    } >"$conf"
    printf '%s\n' "$PW" | "$BIN/ferryd" user add bench -c "$conf" --root "$root" "$@" >>"$LOG" 2>&1 \
        || die "ferryd user add ($name)"
    NODE_PORTS=()
    for ((i = 0; i < nodes; i++)); do
        start_node "$name$i" "$root" "$conf" "$@"
        NODE_PORTS+=("$NODE_PORT")
    done
    PORT[$name]=${NODE_PORTS[0]}
    FP[$name]=$("$BIN/ferryd" fingerprint -c "$conf" --root "$root")
    ROOT_OF[$name]=$root
}
declare -A ROOT_OF=()

log "sqlite: one ferryd, state in ferry.db"
setup sqlite "" 1
log "postgres: one ferryd, state in PostgreSQL"
setup postgres "" 1 --database "$(newdb bench_single)"
log "cluster: two ferryd nodes, one root, one database, HAProxy"
setup cluster 127.0.0.1 2 --database "$(newdb bench_cluster)"
HA_PORT=$(free_port 25000)
cat >"$D/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen ferry
    bind 127.0.0.1:$HA_PORT
    balance roundrobin
    server node0 127.0.0.1:${NODE_PORTS[0]} send-proxy-v2
    server node1 127.0.0.1:${NODE_PORTS[1]} send-proxy-v2
EOF
"$HAPROXY" -db -f "$D/haproxy.cfg" >>"$D/haproxy.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    ss -Hltn "( sport = :$HA_PORT )" | grep -q . && break; sleep 0.05
done
PORT[cluster]=$HA_PORT

ferry_on() { # ferry_on NAME ARGS...: the client against setup NAME
    local name=$1
    shift
    FERRY_PASSWORD=$PW FERRY_KNOWN_SERVERS=$D/known_servers \
        "$BIN/ferry" -s "127.0.0.1:${PORT[$name]}" -u bench --fingerprint "${FP[$name]}" "$@"
}
for name in sqlite postgres cluster; do
    ferry_on "$name" ls / >>"$LOG" 2>&1 || die "login on $name failed, see $LOG"
done

# --- timing ----------------------------------------------------------------------
# Each round runs every setup once, in turn, so a slow spell of the host
# hits them all alike. T[FIGURE NAME] collects the times in seconds.
declare -A T=()
TREE_N=0
time_it() { # time_it KEY CMD...: appends CMD's wall time to T[KEY]
    local key=$1 t0 t1
    shift
    t0=$(now)
    if ! "$@" >>"$LOG" 2>&1; then
        log "FAILED: $key (see $LOG)"; FAILED=1; T[$key]+="FAIL "; return
    fi
    t1=$(now)
    T[$key]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') "
}
for ((r = 1; r <= RUNS; r++)); do
    log "round $r of $RUNS"
    for name in sqlite postgres cluster; do
        time_it "login $name" ferry_on "$name" ls /
    done
    for name in sqlite postgres cluster; do
        TREE_N=$((TREE_N + 1))
        warm "$TREE"; sync
        time_it "tree $name" ferry_on "$name" put -r "$TREE" "/tree-$TREE_N"
        diff -rq "$TREE" "${ROOT_OF[$name]}/home/bench/tree-$TREE_N" >>"$LOG" 2>&1 \
            || { log "FAILED: tree on $name differs"; FAILED=1; }
    done
done

# "median (min-max)" of the times in $1, in milliseconds or seconds.
summary() { # summary "TIMES" ms|s
    # shellcheck disable=SC2086  # one time per word
    printf '%s\n' $1 | sort -g | awk -v unit="$2" '
        /FAIL/ { fail = 1 } { v[NR] = $1 }
        END {
            if (fail) { print "FAIL"; exit }
            n = NR; m = v[int((n + 1) / 2)]
            k = unit == "ms" ? 1000 : 1; f = unit == "ms" ? "%.0f" : "%.2f"
            printf f " (" f "-" f ")\n", m * k, v[1] * k, v[n] * k
        }'
}
report() {
    echo "State store benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $RUNS runs each, median (range)"
    echo
    echo "| setup | login: \`ferry ls /\` as a new process (ms) | tree put, $NFILES x 4 KiB (s) |"
    echo "|---|---|---|"
    echo "| SQLite, one node (default) | $(summary "${T[login sqlite]}" ms) | $(summary "${T[tree sqlite]}" s) |"
    echo "| PostgreSQL, one node | $(summary "${T[login postgres]}" ms) | $(summary "${T[tree postgres]}" s) |"
    echo "| PostgreSQL, two nodes behind HAProxy | $(summary "${T[login cluster]}" ms) | $(summary "${T[tree cluster]}" s) |"
}
report | tee "$D/results.md"
for name in sqlite postgres cluster; do rm -rf "${ROOT_OF[$name]}/home/bench"/tree-*; done
exit "$FAILED"
