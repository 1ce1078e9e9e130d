#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make node-down: removes everything make node-up made, also when it was
# left half made: the pods' processes, the node's daemons (by pid), their
# mounts and cgroups, the test hosts, the network namespaces (and with them
# every iptables rule, ipset and route inside), the host's DNAT, and the
# control plane in .cluster-node.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "the real node needs root"
if owner=$(foreign_owner); then
	die "the real node running here belongs to $owner: run make node-down in that checkout (or remove $owner if it is gone)"
fi

# The kubelet first, so it does not start what is being stopped.
for c in kube-router kube-proxy kubelet; do
	stop "$c" "$c"
done

# Every process in the kubelet's pod cgroups (containers and their shims'
# children), then the shims and containerd itself.
kill_cgroup_tree() {
	local root=$1 f
	[ -d "$root" ] || return 0
	find "$root" -name cgroup.procs -print0 2>/dev/null |
		while IFS= read -r -d '' f; do
			{ xargs -r kill -KILL <"$f"; } 2>/dev/null || true
		done
}
for ctl in /sys/fs/cgroup/*/; do
	kill_cgroup_tree "${ctl}kubepods"
done
if [ -d "$state/containerd" ]; then
	for pid in $(pgrep -f "containerd-shim.* -address $state/containerd/containerd.sock" || true); do
		kill -KILL "$pid" 2>/dev/null || true
	done
fi
stop containerd containerd

# Mounts under the state directory (container root file systems, pod
# volumes, network namespace files), deepest first.
if [ -d "$state" ]; then
	awk -v d="$state/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
fi
# The kubelet's cgroups, leaves first (a cgroup goes once it is empty).
for ctl in /sys/fs/cgroup/*/; do
	[ -d "${ctl}kubepods" ] || continue
	for _ in 1 2 3 4 5; do
		find "${ctl}kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ -d "${ctl}kubepods" ] || break
		sleep 0.2
	done
done

"$node_here/testhosts.sh" down "$NODE_NETNS" >/dev/null 2>&1 || true

# A namespace whose last process is still exiting may refuse for a moment.
for _ in 1 2 3 4 5; do
	[ -e "/run/netns/$NODE_NETNS" ] || break
	ip netns del "$NODE_NETNS" 2>/dev/null && break
	sleep 1
done
[ ! -e "/run/netns/$NODE_NETNS" ] || ip netns del "$NODE_NETNS"
ip link del "$HOST_VETH" 2>/dev/null || true
# The host's DNAT rules for this state directory (or for any: a node left by
# another checkout holds the same namespace names).
for table_chain in nat:PREROUTING filter:INPUT filter:FORWARD; do
	table=${table_chain%%:*}
	chain=${table_chain#*:}
	{ iptables -t "$table" -S "$chain" 2>/dev/null || true; } |
		{ grep -F -- '--comment "kage-node api ' || true; } |
		sed 's/^-A /-D /' | while read -r rule; do
		eval "iptables -t $table $rule" || true
	done
done
iptables -F "$HOST_CHAIN" 2>/dev/null || true
iptables -X "$HOST_CHAIN" 2>/dev/null || true

"$cluster_here/down.sh"
rm -f "$OWNER_FILE"
