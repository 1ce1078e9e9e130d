#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test hosts of the real-node test bed: the only places outside the
# cluster its pods can reach, each answering in a way a test can tell apart.
#
#   testhosts.sh up [NODE_NETNS]    make them (again, where something is missing)
#   testhosts.sh down [NODE_NETNS]  remove them
#
# NODE_NETNS is the node's network namespace (default kage-node); it must
# exist for `up`. The hosts live in a network namespace of their own
# (KAGE_TESTHOSTS_NETNS, default kage-testhosts), joined to the node's by a
# veth pair: th0 10.87.1.1/30 in the node, eth0 10.87.1.2/30 in the hosts.
# On the hosts' loopback:
#   203.0.113.10  TCP 80, 443, 8000, 8050, 8100, 9000
#   203.0.113.7   TCP 443
#   198.51.100.53 DNS on 53 (UDP and TCP): 203.0.113.10 for any A query,
#                 an empty answer for any other type
# A TCP listener sends one line "<address>:<port>\n" on accept and closes.
# The hosts route 10.88.0.0/24 (the pods) back via 10.87.1.1. In the node's
# namespace, packets from the pods look up the node's own routes (no
# default there), then table 188 (ip rules), which holds the three
# addresses via 10.87.1.2 and a blackhole default. Nothing is done in the
# machine's own network namespace.
#
# The listeners run in the hosts' namespace, their pid files and logs in
# ${KAGE_CLUSTER_DIR:-<repo>/.cluster-node}/testhosts/; the DNS server is
# the CoreDNS of tests/node/images.sh (built on first use).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${KAGE_CLUSTER_DIR:-$repo/.cluster-node}/testhosts
th=${KAGE_TESTHOSTS_NETNS:-kage-testhosts}

NODE_SIDE=10.87.1.1
HOSTS_SIDE=10.87.1.2
POD_CIDR=10.88.0.0/24
TABLE=188
WEB=203.0.113.10
ALT=203.0.113.7
DNS=198.51.100.53
WEB_PORTS=(80 443 8000 8050 8100 9000)
ALT_PORTS=(443)

log() { echo "testhosts: $*" >&2; }
die() {
	echo "testhosts: $*" >&2
	exit 1
}

usage="usage: testhosts.sh up|down [NODE_NETNS]"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "$usage"; fi
action=$1
node=${2:-kage-node}
case $action in
up | down) ;;
*) die "$usage" ;;
esac
name_ok='^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'
[[ $node =~ $name_ok ]] || die "NODE_NETNS: not a network namespace name: '$node'"
[[ $th =~ $name_ok ]] || die "KAGE_TESTHOSTS_NETNS: not a network namespace name: '$th'"
[ "$node" != "$th" ] || die "NODE_NETNS and KAGE_TESTHOSTS_NETNS are both '$th'"

# Every ip command names its namespace: none of them runs in the machine's.
inth() { ip -n "$th" "$@"; }
innode() { ip -n "$node" "$@"; }
netns_exists() { [ -e "/run/netns/$1" ]; }

# The node's own routes come first (pods, the machine's veth, the test
# hosts' veth), without a default: the node has none, and a lookup from a
# pod that finds nothing there goes on to table 188. Without this, a packet
# whose source is in the pod range but that is bound for the cluster (the
# node's probes to a pod leave from the routed veths' gateway address,
# 10.88.0.1; pods reach the API server through its DNAT to 10.87.0.1)
# would meet table 188's blackhole.
MAIN_PRIO=1000
TABLE_PRIO=1001
# rule_present: whether the node's namespace sends the pods to table 188.
rule_present() {
	innode rule show | grep -Eq "^$TABLE_PRIO:.*from ${POD_CIDR//./\\.} lookup $TABLE( |\$)"
}
main_rule_present() {
	innode rule show | grep -Eq "^$MAIN_PRIO:.*lookup main suppress_prefixlength 0"
}

# running NAME: prints the pid of listener NAME if the process in its pid
# file is alive and is the one this state directory started (its command
# line names the directory); fails otherwise.
running() {
	local pid
	pid=$(cat "$state/$1.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$state/" || return 1
	echo "$pid"
}

# stop NAME: SIGTERM to listener NAME, SIGKILL after 5 s; removes its pid file.
stop() {
	local pid i
	if pid=$(running "$1"); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			[ -e "/proc/$pid" ] || break
			sleep 0.1
		done
		if [ -e "/proc/$pid" ]; then
			log "$1 ($pid) ignored SIGTERM: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$state/$1.pid" "$state/$1.ready"
}

# listening PROTO ADDRESS:PORT...: whether every one has a socket listening
# in the hosts' namespace (PROTO t or u).
listening() {
	local proto=$1 have want
	shift
	have=$(nsenter --net="/run/netns/$th" ss -Hln"$proto" | awk '{print $4}')
	for want in "$@"; do
		grep -qxF "$want" <<<"$have" || return 1
	done
}

# launch NAME CMD...: runs CMD in the hosts' namespace in a session of its
# own, detached, its output in NAME.log. CMD writes its own pid file.
launch() {
	local name=$1
	shift
	rm -f "$state/$name.pid" "$state/$name.ready"
	nsenter --net="/run/netns/$th" setsid "$@" >"$state/$name.log" 2>&1 </dev/null &
}

# await NAME PROTO ADDRESS:PORT...: waits up to 20 s for NAME's pid file and
# sockets; on failure shows its log and exits.
await() {
	local name=$1 proto=$2 i
	shift 2
	for ((i = 0; i < 200; i++)); do
		if running "$name" >/dev/null && listening "$proto" "$@"; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$state/$name.log" >&2 2>/dev/null || true
	stop "$name"
	die "$name did not come up listening on $* (log: $state/$name.log)"
}

up() {
	local a p coredns tcp=()
	netns_exists "$node" || die "NODE_NETNS: no network namespace '$node' (/run/netns/$node)"
	mkdir -p "$state"

	netns_exists "$th" || ip netns add "$th"
	inth link set lo up
	# The pair is made inside the two namespaces at once: no name of it ever
	# exists in the machine's namespace, where it could clash.
	if ! inth link show eth0 >/dev/null 2>&1 || ! innode link show th0 >/dev/null 2>&1; then
		inth link del eth0 2>/dev/null || true
		innode link del th0 2>/dev/null || true
		inth link add eth0 type veth peer name th0 netns "$node"
	fi
	inth addr replace "$HOSTS_SIDE/30" dev eth0
	inth link set eth0 up
	innode addr replace "$NODE_SIDE/30" dev th0
	innode link set th0 up
	for a in "$WEB" "$ALT" "$DNS"; do
		inth addr replace "$a/32" dev lo
		innode route replace "$a/32" via "$HOSTS_SIDE" dev th0 table "$TABLE"
	done
	inth route replace "$POD_CIDR" via "$NODE_SIDE" dev eth0
	innode route replace blackhole default table "$TABLE"
	main_rule_present || innode rule add priority "$MAIN_PRIO" lookup main suppress_prefixlength 0
	rule_present || innode rule add priority "$TABLE_PRIO" from "$POD_CIDR" lookup "$TABLE"

	for p in "${WEB_PORTS[@]}"; do tcp+=("$WEB:$p"); done
	for p in "${ALT_PORTS[@]}"; do tcp+=("$ALT:$p"); done
	if ! running tcp >/dev/null; then
		launch tcp python3 "$here/testhosts.py" \
			--pid-file "$state/tcp.pid" --ready-file "$state/tcp.ready" "${tcp[@]}"
	fi
	await tcp t "${tcp[@]}"

	if ! running dns >/dev/null; then
		coredns=$("$here/images.sh" --coredns-binary) || die "tests/node/images.sh --coredns-binary failed"
		# The other types get NOERROR with no records, so that a resolver
		# asking A and AAAA at once takes the A and does not retry.
		cat >"$state/Corefile" <<-EOF
			.:53 {
			    bind $DNS
			    errors
			    log
			    template IN A . {
			        answer "{{ .Name }} 60 IN A $WEB"
			    }
			    template ANY ANY . {
			        rcode NOERROR
			    }
			}
		EOF
		launch dns "$coredns" -conf "$state/Corefile" -pidfile "$state/dns.pid"
	fi
	await dns t "$DNS:53"
	await dns u "$DNS:53"
	log "up: $th joined to $node; ${tcp[*]} and DNS $DNS:53"
}

down() {
	stop tcp
	stop dns
	if netns_exists "$th"; then
		ip netns del "$th"
	fi
	if netns_exists "$node"; then
		while rule_present; do
			innode rule del priority "$TABLE_PRIO" from "$POD_CIDR" lookup "$TABLE"
		done
		while main_rule_present; do
			innode rule del priority "$MAIN_PRIO" lookup main suppress_prefixlength 0
		done
		innode route flush table "$TABLE" 2>/dev/null || true
		# Gone with the hosts' namespace unless that was already gone.
		innode link del th0 2>/dev/null || true
	fi
	rm -f "$state/Corefile"
	log "down: $th removed"
}

"$action"
