#!/usr/bin/env bash
# What the embedded state store (SQLite in the root) costs against an
# older ferryd without one: a login (`ferry ls /` as a new process) and
# the 10,000-file tree put, the two builds taking turns run by run.
#
# Usage: OLD_BIN_DIR=... NEW_BIN_DIR=... tests/bench/embedded.sh
#   OLD_BIN_DIR / NEW_BIN_DIR  directories holding ferry and ferryd
#                              (release builds of the two commits)
#   BENCH_RUNS                 timed runs per figure and build (5)
#   BENCH_LOGINS               logins timed per run (10)
#   BENCH_DIR                  scratch dir (/tmp/ferry-embedded-bench)
# Prints a markdown table: median (range) per build and figure.
set -euo pipefail
OLD=${OLD_BIN_DIR:?set OLD_BIN_DIR}
NEW=${NEW_BIN_DIR:?set NEW_BIN_DIR}
RUNS=${BENCH_RUNS:-5}
LOGINS=${BENCH_LOGINS:-10}
D=${BENCH_DIR:-/tmp/ferry-embedded-bench}
NFILES=10000
mkdir -p "$D"
TREE=$D/tree
if [[ ! -d $TREE ]]; then
    mkdir -p "$TREE"
    for i in $(seq 0 $((NFILES - 1))); do
        d=$TREE/d$((i / 500))
        [[ -d $d ]] || mkdir -p "$d"
        head -c 4096 /dev/urandom > "$d/f$i"
    done
fi
now() { date +%s.%N; }
declare -A T
run_one() { # build-name bin-dir run
    local name=$1 bin=$2 run=$3 root=$D/root-$1 pid addr fp t0 t1
    rm -rf "$root" "$D/out-$name"
    printf 'pw\n' | "$bin/ferryd" user add bench --root "$root" >/dev/null 2>&1
    "$bin/ferryd" serve --root "$root" --listen 127.0.0.1:0 >"$D/out-$name" 2>"$D/log-$name" &
    pid=$!
    for _ in $(seq 600); do grep -qs "listening on" "$D/out-$name" && break; sleep 0.05; done
    addr=$(sed -n 's/^listening on //p' "$D/out-$name")
    [[ -n $addr ]] || { echo "ferryd ($name) did not start; see $D/log-$name" >&2; exit 1; }
    fp=$("$bin/ferryd" fingerprint --root "$root")
    local f=("$bin/ferry" -s "$addr" -u bench --fingerprint "$fp")
    export FERRY_PASSWORD=pw FERRY_KNOWN_SERVERS=$D/known
    "${f[@]}" ls / >/dev/null # first login measures the home
    for _ in $(seq "$LOGINS"); do
        t0=$(now); "${f[@]}" ls / >/dev/null; t1=$(now)
        T[login $name]+="$(echo "($t1 - $t0) * 1000" | bc -l) "
    done
    t0=$(now); "${f[@]}" put -r "$TREE" /tree >/dev/null; t1=$(now)
    T[tree $name]+="$(echo "$t1 - $t0" | bc -l) "
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
summary() { # values unit-format
    tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk -v f="$2" '
        { v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
          printf f " (" f "-" f ")", m, v[1], v[NR] }'
}
for r in $(seq "$RUNS"); do
    echo "run $r/$RUNS" >&2
    if (( r % 2 )); then run_one old "$OLD" "$r"; run_one new "$NEW" "$r"
    else run_one new "$NEW" "$r"; run_one old "$OLD" "$r"; fi
done
echo "| build | login (ms) | tree put, $NFILES x 4 KiB (s) |"
echo "|---|---|---|"
echo "| before the store ($OLD) | $(summary "${T[login old]}" %.1f) | $(summary "${T[tree old]}" %.2f) |"
echo "| SQLite store ($NEW) | $(summary "${T[login new]}" %.1f) | $(summary "${T[tree new]}" %.2f) |"
