# SPDX-License-Identifier: Apache-2.0
# Shared by the local control plane's scripts: paths, ports, process control.
# Sourced, not run.

cluster_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$cluster_here/../.." && pwd)
. "$cluster_here/versions.sh"

state=${KAGE_CLUSTER_DIR:-$repo_root/.cluster}
bindir=$(k8s_bin_dir)
export PATH="$bindir:$PATH"

log() { echo "cluster: $*" >&2; }
die() {
	echo "cluster: $*" >&2
	exit 1
}

# A block of 20 ports derived from the checkout's path, so two checkouts on
# one machine do not clash; the first free block from there is taken. The
# blocks lie in 20000-27999, below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default), where outgoing
# connections take their local ports: a port chosen in that range can be
# taken by, say, the API server's connection to etcd before the component
# meant to listen on it starts. 28000-29999 is the tests' (free_port in
# tests/e2e/conftest.py). A port counts as used in any state, not only
# listening.
port_in_use() { ss -Hatn "sport = :$1" 2>/dev/null | grep -q .; }
choose_ports() {
	local slot base p free lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -ge 28000 ] || die "the kernel's ephemeral port range starts at $lo, inside 20000-27999 where the local control plane takes its ports: raise net.ipv4.ip_local_port_range"
	slot=$(($(printf '%s' "$repo_root" | cksum | cut -d' ' -f1) % 400))
	for _ in $(seq 0 399); do
		base=$((20000 + slot * 20))
		free=1
		for p in $(seq "$base" $((base + 9))); do
			if port_in_use "$p"; then
				free=0
				break
			fi
		done
		if [ $free = 1 ]; then
			echo "$base"
			return 0
		fi
		slot=$(((slot + 1) % 400))
	done
	die "no free block of ports found between 20000 and 28000"
}

# pid_alive NAME: the process recorded for NAME still runs (and is ours:
# its command line names the binary, so a recycled pid is not mistaken).
pid_alive() {
	local f="$state/pids/$1.pid" pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	# The binary's name and this cluster's state directory (every component
	# is started with paths inside it): another cluster's process that got
	# a recycled pid is not ours.
	local cmd
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	case "$cmd" in
	*"$2"*"$state"* | *"$state"*"$2"*) return 0 ;;
	*) return 1 ;;
	esac
}

# start NAME BINARY ARGS...: runs the binary in its own session (so a
# Ctrl-C in the terminal does not reach it), logs to logs/NAME.log.
start() {
	local name=$1
	shift
	mkdir -p "$state/logs" "$state/pids" "$state/cmds"
	printf '%s\0' "$@" >"$state/cmds/$name"
	setsid "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$state/pids/$name.pid"
}

# start_supervised NAME BINARY ARGS...: like start, but the component is
# started again a second after it exits, as the kubelet does for a control
# plane's static pods. kube-scheduler exits on purpose when it finds its
# cache inconsistent (as it can after an API server restart); a real
# cluster brings it back, and so does this one.
start_supervised() {
	local name=$1
	shift
	mkdir -p "$state/logs" "$state/pids" "$state/cmds"
	printf '%s\0' "$@" >"$state/cmds/$name"
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c '
		name=$1
		shift
		child=
		trap "[ -n \"\$child\" ] && wait \$child; exit 0" TERM INT
		while :; do
			"$@" &
			child=$!
			wait "$child" && code=0 || code=$?
			echo "supervisor: $name exited with code $code; starting it again in 1 s" >&2
			sleep 1
		done' kage-supervise "$name" "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$state/pids/$name.pid"
}

# stop NAME MATCH: SIGTERM, then SIGKILL after 10 s, to the process group
# start made (a supervisor and its component alike); waits until it is gone.
stop() {
	local name=$1 match=$2 f="$state/pids/$1.pid" pid i
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if pid_alive "$name" "$match"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
		if [ -d "/proc/$pid" ]; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			for i in $(seq 1 50); do
				[ -d "/proc/$pid" ] || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$f"
}

kadmin() { kubectl --kubeconfig "$state/kubeconfig" "$@"; }

# write_kubeconfig FILE SERVER USER CERT KEY: a kubeconfig with embedded
# certificates, for a client-certificate identity.
write_kubeconfig() {
	local file=$1 server=$2 user=$3 cert=$4 key=$5
	# The umask in a subshell: the caller's files keep theirs.
	(
		umask 077
		cat >"$file"
	) <<KC
apiVersion: v1
kind: Config
clusters:
- name: kage-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$state/pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$cert")
    client-key-data: $(base64 -w0 "$key")
contexts:
- name: kage-local
  context: {cluster: kage-local, user: $user}
current-context: kage-local
KC
}
