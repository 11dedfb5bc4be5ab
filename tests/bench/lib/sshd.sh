# shellcheck shell=bash
# A private OpenSSH server on loopback for the benchmarks that compare with
# sftp and rsync over ssh. Sourced; the caller defines log, die, D (an
# absolute work directory: sshd chdirs to /) and CIPHER.
#   start_sshd   sets SSH_PORT, SSHD_PID and SSH_OPTS (options for ssh,
#                sftp and rsync -e; -F /dev/null ignores ~/.ssh/config)

port_in_use() { ss -Htan "( sport = :$1 )" | grep -q .; }
free_port() { local p=$1; while port_in_use "$p"; do p=$((p + 1)); done; echo "$p"; }
wait_listen() { # wait_listen PORT: up to 5 s until something listens there
    local i; for ((i = 0; i < 100; i++)); do
        ss -Hltn "( sport = :$1 )" | grep -q . && return 0; sleep 0.05
    done; return 1
}

start_sshd() {
    local s=$D/ssh
    mkdir -p "$s" /run/sshd    # /run/sshd: sshd's privilege-separation dir
    [[ -f $s/host_key ]] || ssh-keygen -q -t ed25519 -N '' -f "$s/host_key"
    [[ -f $s/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -f "$s/id_ed25519"
    cp "$s/id_ed25519.pub" "$s/authorized_keys"
    SSH_PORT=$(free_port 2222)
    cat >"$s/sshd_config" <<CONF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $s/host_key
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin yes
StrictModes no
Subsystem sftp internal-sftp
CONF
    /usr/sbin/sshd -D -f "$s/sshd_config" -E "$s/sshd.log" & SSHD_PID=$!
    wait_listen "$SSH_PORT" || die "sshd did not start, see $s/sshd.log"
    SSH_OPTS="-F /dev/null -p $SSH_PORT -c $CIPHER -i $s/id_ed25519 -o IdentitiesOnly=yes \
-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    # shellcheck disable=SC2086
    ssh $SSH_OPTS 127.0.0.1 true || die "ssh login to the private sshd failed"
    log "sshd on 127.0.0.1:$SSH_PORT"
}
