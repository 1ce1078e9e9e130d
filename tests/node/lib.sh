#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Shared by the real node's scripts (node-up.sh, node-down.sh, testhosts.sh):
# its addresses, names and process control. Sourced, not run.
#
# The node lives in a network namespace of its own, joined to the machine
# by one veth pair; everything it does to packets (kube-proxy's and
# kube-router's iptables and ipsets, pod routes) stays inside it and goes
# with it. Its processes share the machine's mounts and cgroups.

export KAGE_CLUSTER_DIR=${KAGE_CLUSTER_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cluster-node}
. "$(dirname "${BASH_SOURCE[0]}")/../cluster/lib.sh"
node_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "node: $*" >&2; }
die() {
	echo "node: $*" >&2
	exit 1
}

NODE_NAME=kage-node
NODE_NETNS=kage-node
TESTHOSTS_NETNS=${KAGE_TESTHOSTS_NETNS:-kage-testhosts}
HOST_VETH=kage-n0
HOST_IP=10.87.0.1 # the machine's end: the API server is reached here
NODE_IP=10.87.0.2 # the node's InternalIP, where the kubelet listens
POD_CIDR=10.88.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
KUBE_ROUTER_VERSION=v2.1.0

# The node's binaries: kubelet and kube-proxy of the control plane's
# release, kube-router (tests/node/build.sh).
node_bin_dir() {
	echo "${XDG_CACHE_HOME:-$HOME/.cache}/kage/node-$K8S_VERSION"
}
nodebin=$(node_bin_dir)

# innode CMD...: CMD in the node's network namespace and nothing else
# (`ip netns exec` would also remount /sys, hiding the cgroup mounts the
# kubelet and runc need).
innode() { nsenter --net="/run/netns/$NODE_NETNS" "$@"; }

# start_in_node NAME CMD...: start (tests/cluster/lib.sh) inside the node.
start_in_node() {
	local name=$1
	shift
	start "$name" nsenter --net="/run/netns/$NODE_NETNS" "$@"
}

# The node's names (network namespaces, the veth, the kubelet's cgroups)
# are the machine's: this file says which state directory owns them.
OWNER_FILE=/run/kage-node.owner

# foreign_owner: prints the state directory of a node made by another
# checkout that still exists, and succeeds; fails when there is none (or
# when it is this one).
foreign_owner() {
	local owner
	[ -f "$OWNER_FILE" ] || return 1
	owner=$(cat "$OWNER_FILE")
	[ -n "$owner" ] && [ "$owner" != "$state" ] && [ -d "$owner" ] || return 1
	echo "$owner"
}

ctr_node() { ctr --address "$state/containerd/containerd.sock" -n k8s.io "$@"; }

# The machine's chain for what arrives from the node.
HOST_CHAIN=KAGE-NODE-IN

# The host's DNAT that lets the node and its pods reach the API server,
# which listens on 127.0.0.1 only; identified by this comment.
api_dnat_comment() { echo "kage-node api $state"; }
