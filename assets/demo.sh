#!/usr/bin/env bash
# Demo: builds Ferry, starts ferryd on loopback with a demo user and the
# sample tree from assets/demo, then runs a short CLI session against it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
cargo build --release --bins -q
bin="$here/target/release"
root="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null; rm -rf "$root"' EXIT
printf 'demo\n' | "$bin/ferryd" user add demo --quota 100MiB --root "$root" 2>/dev/null
cp -r "$here/assets/demo/." "$root/home/demo/"
"$bin/ferryd" serve --root "$root" --listen 127.0.0.1:0 > "$root/addr" 2> "$root/ferryd.log" &
pid=$!
while ! grep -q listening "$root/addr" 2>/dev/null; do sleep 0.1; done
addr="$(sed 's/listening on //' "$root/addr")"
export FERRY_PASSWORD=demo
# The demo server's self-signed certificate, pinned by its fingerprint.
fp="$("$bin/ferryd" fingerprint --root "$root")"
export FERRY_KNOWN_SERVERS="$root/known_servers"
run() { echo "\$ ferry $*"; "$bin/ferry" -s "$addr" -u demo --fingerprint "$fp" "$@"; echo; }
run ls -l
run mkdir -p inbox/today
run mv notes.txt inbox/today
run ls -l inbox/today
run quota
echo "ferryd is on $addr (user demo, password demo); Enter to stop."
read -r _ || true
