#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, in DIR, on 127.0.0.1.
#
#   postgres.sh start DIR   initdb into DIR/data, start on a free port with
#                           fsync off and unix sockets in DIR/run, wait until
#                           it accepts connections, print its URL
#                           (postgres://postgres@127.0.0.1:PORT/postgres)
#                           (a stopped cluster in DIR starts again on its
#                           port, with its data)
#   postgres.sh stop DIR    stop it, keeping the data (idempotent)
#   postgres.sh url DIR     print the URL of the cluster running in DIR
#   postgres.sh bindir      print the PostgreSQL bin directory used
#
# With PG_SSL=1 at the first start, the cluster serves TLS only: a test CA
# (DIR/ca.pem) signs a certificate for 127.0.0.1, and connections without
# TLS are rejected (pg_hba `hostnossl ... reject`). Needs openssl.
#
# The bin directory is $PG_BIN if set, else the highest version of
# /usr/lib/postgresql/*/bin (Debian's layout), else the one holding `initdb`
# on PATH. initdb refuses to run as root: as root the cluster belongs to the
# `postgres` user (DIR and the directories above it are made traversable).
# Authentication is `trust`, which is fine on loopback for a throwaway test
# cluster and never for anything else.
set -euo pipefail

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

find_bindir() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/initdb" ] || die "PG_BIN=$PG_BIN has no initdb"
    echo "$PG_BIN"
    return
  fi
  local best="" d
  # sort -V puts 9.6 before 15 and 15 before 16.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
  done
  if [ -z "$best" ] && command -v initdb >/dev/null 2>&1; then
    best="$(dirname "$(command -v initdb)")"
  fi
  [ -n "$best" ] || die "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): install it, e.g. apt-get install postgresql (bash .ci/run does)"
  echo "$best"
}

# Runs a command as the cluster's owner: `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    if command -v runuser >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      su postgres -s /bin/sh -c '"$0" "$@"' -- "$@"
    fi
  else
    "$@"
  fi
}

# A port nobody listens on now (a race with another process is caught by
# the start loop below, which retries on a bind failure).
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
}

url_of() {
  echo "postgres://postgres@127.0.0.1:$1/postgres"
}

# A test CA (DIR/ca.pem) and, in the data directory, the server's key and
# a certificate for 127.0.0.1 it signed; only TLS connections accepted.
make_tls() {
  local dir="$1" tmp
  command -v openssl >/dev/null 2>&1 || die "PG_SSL=1 needs openssl"
  tmp="$(mktemp -d)"
  (
    cd "$tmp"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -keyout ca.key -out ca.pem -days 30 -subj /CN=ferry-test-ca
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -keyout server.key -out server.csr -subj /CN=127.0.0.1
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n' >ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.crt -days 30 -extfile ext
  ) >"$dir/tls.log" 2>&1 || die "openssl failed: $(cat "$dir/tls.log")"
  install -m 644 "$tmp/ca.pem" "$dir/ca.pem"
  if [ "$(id -u)" -eq 0 ]; then
    install -o postgres -m 600 "$tmp/server.key" "$dir/data/server.key"
    install -o postgres -m 644 "$tmp/server.crt" "$dir/data/server.crt"
  else
    install -m 600 "$tmp/server.key" "$dir/data/server.key"
    install -m 644 "$tmp/server.crt" "$dir/data/server.crt"
  fi
  rm -rf "$tmp"
  # Reject plain connections: the first matching line wins.
  as_owner sh -c 'f="$1/pg_hba.conf"; { echo "hostnossl all all 0.0.0.0/0 reject"; cat "$f"; } >"$f.new" && mv "$f.new" "$f"' -- "$dir/data"
}

cmd="${1:-}"
case "$cmd" in
  bindir)
    find_bindir
    exit 0
    ;;
  start | stop | url) ;;
  *) die "usage: postgres.sh start|stop|url DIR, or postgres.sh bindir" ;;
esac
[ $# -eq 2 ] || die "usage: postgres.sh $cmd DIR"
dir="$2"

case "$cmd" in
  url)
    [ -f "$dir/port" ] || die "no cluster in $dir"
    url_of "$(cat "$dir/port")"
    ;;

  stop)
    [ -d "$dir/data" ] || exit 0
    bin="$(find_bindir)"
    if [ -f "$dir/data/postmaster.pid" ]; then
      # Fast: a clean shutdown that keeps the data for a later start.
      (cd / && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1) || true
    fi
    ;;

  start)
    bin="$(find_bindir)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ -e "$dir/data" ]; then
      # A stopped cluster starts again on its port, with its data.
      [ -f "$dir/port" ] || die "$dir/data exists but $dir/port does not"
      [ ! -f "$dir/data/postmaster.pid" ] || die "the cluster in $dir runs already"
      fixed_port="$(cat "$dir/port")"
    else
      fixed_port=""
      if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to own the cluster (initdb refuses root)"
        # The postgres user must reach DIR: make it and every directory
        # above it traversable (temporary directories are created 0700).
        chmod 755 "$dir"
        d="$(dirname "$dir")"
        while [ "$d" != "/" ]; do
          chmod o+x "$d" 2>/dev/null || true
          d="$(dirname "$d")"
        done
        install -d -o postgres -m 700 "$dir/data" "$dir/run"
      else
        install -d -m 700 "$dir/data" "$dir/run"
      fi
      (cd / && as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync >"$dir/initdb.log" 2>&1) ||
        die "initdb failed: $(cat "$dir/initdb.log")"
      if [ "${PG_SSL:-}" = 1 ]; then
        make_tls "$dir"
      fi
    fi
    for attempt in 1 2 3 4 5; do
      port="${fixed_port:-$(free_port)}"
      opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/run"
      opts="$opts -c fsync=off -c full_page_writes=off"
      opts="$opts -c max_connections=300"
      if [ -f "$dir/ca.pem" ]; then
        opts="$opts -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key"
      fi
      if (cd / && as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" \
        -o "$opts" -w -t 60 start >/dev/null 2>&1); then
        break
      fi
      if [ -z "$fixed_port" ] && [ "$attempt" -lt 5 ] &&
        grep -q "could not bind\|could not create any TCP/IP sockets" "$dir/data/server.log" 2>/dev/null; then
        continue
      fi
      die "the server did not start: $(tail -n 20 "$dir/data/server.log" 2>/dev/null)"
    done
    echo "$port" >"$dir/port"
    for _ in $(seq 1 300); do
      if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then
        url_of "$port"
        exit 0
      fi
      sleep 0.1
    done
    die "the server on port $port is not ready after 30 s: $(tail -n 20 "$dir/data/server.log")"
    ;;
esac
