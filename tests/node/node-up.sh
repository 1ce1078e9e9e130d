#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make node-up: the local control plane (state in .cluster-node, no kwok
# nodes) plus one real node, `kage-node`: containerd and runc, routed-veth
# CNI, kubelet, kube-proxy and kube-router's NetworkPolicy controller in a
# network namespace of their own; CoreDNS as pods; test hosts outside the
# cluster; and kage itself from its image as the Deployment it ships.
# Idempotent: a second call reuses what runs. Prints the KUBECONFIG line.
# With --check it only says, by its exit code, whether it all runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# Image layers and pod volumes must be readable by the containers' users.
umask 022

node_components=(containerd kubelet kube-proxy kube-router)

node_running() {
	local c
	"$cluster_here/up.sh" --check || return 1
	for c in "${node_components[@]}"; do
		pid_alive "$c" "$c" || return 1
	done
	[ -f "$state/node-ready" ] || return 1
	kadmin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

if [ "${1:-}" = --check ]; then
	node_running
	exit
fi
[ "$(id -u)" -eq 0 ] || die "the real node needs root (network namespaces, iptables, cgroups, mounts)"
if node_running; then
	log "the node already runs (state in $state)"
	echo "export KUBECONFIG=$state/kubeconfig"
	exit 0
fi
# Anything half made, by this checkout or another (the namespace names are
# the machine's), goes first.
"$node_here/node-down.sh"

for b in kubelet kube-proxy kube-router; do
	[ -x "$nodebin/$b" ] || die "$nodebin/$b is missing: run make node-build"
done
for b in containerd runc ctr ipset iptables conntrack nsenter; do
	command -v "$b" >/dev/null || die "$b is missing: run make deps"
done
for p in ptp host-local; do
	[ -x "/usr/lib/cni/$p" ] || die "the CNI plugin $p is missing (Debian: containernetworking-plugins): run make deps"
done

echo "$state" >"$OWNER_FILE"

# --- the node's network namespace -------------------------------------------
log "network namespace $NODE_NETNS: $HOST_VETH $HOST_IP <-> eth0 $NODE_IP, pods in $POD_CIDR"
ip netns add "$NODE_NETNS"
tmp_if=kn$$
ip link add "$HOST_VETH" type veth peer name "$tmp_if"
ip link set "$tmp_if" netns "$NODE_NETNS"
innode ip link set "$tmp_if" name eth0
ip addr add "$HOST_IP/30" dev "$HOST_VETH"
ip link set "$HOST_VETH" up
innode ip addr add "$NODE_IP/30" dev eth0
innode ip link set lo up
innode ip link set eth0 up
innode sysctl -qw net.ipv4.ip_forward=1
# The node reaches the machine's 10.87.0.1 and nothing past it: no default
# route. Pods' own traffic to the API server leaves as the node's address.
innode iptables -t nat -A POSTROUTING -s "$POD_CIDR" -o eth0 -j MASQUERADE \
	-m comment --comment "kage-node: pods to the API server"

# --- the control plane, reachable from the node --------------------------
# The API server listens on 127.0.0.1 only; what arrives on the veth for
# 10.87.0.1 at its port is handed to it there (route_localnet on this one
# interface). It advertises 10.87.0.1, so the `kubernetes` Service works
# from pods.
KWOK_NODES=0 KAGE_APISERVER_SANS="IP:$HOST_IP" \
	KAGE_APISERVER_EXTRA_ARGS="--advertise-address=$HOST_IP --kubelet-preferred-address-types=InternalIP ${KAGE_APISERVER_EXTRA_ARGS:-}" \
	"$cluster_here/up.sh" >/dev/null
# shellcheck disable=SC1091 # written by up.sh
. "$state/env"
api_port=${API_URL##*:}
sysctl -qw "net.ipv4.conf.$HOST_VETH.route_localnet=1"
iptables -t nat -A PREROUTING -i "$HOST_VETH" -d "$HOST_IP" -p tcp --dport "$api_port" \
	-j DNAT --to-destination "127.0.0.1:$api_port" -m comment --comment "$(api_dnat_comment)"
# From the node, the machine takes that and nothing else: no other port of
# it, nothing forwarded past it.
iptables -N "$HOST_CHAIN"
iptables -A "$HOST_CHAIN" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A "$HOST_CHAIN" -p tcp -d 127.0.0.1 --dport "$api_port" -m conntrack --ctstate DNAT -j ACCEPT
iptables -A "$HOST_CHAIN" -j DROP
iptables -I INPUT -i "$HOST_VETH" -j "$HOST_CHAIN" -m comment --comment "$(api_dnat_comment)"
iptables -I FORWARD -i "$HOST_VETH" -j DROP -m comment --comment "$(api_dnat_comment)"
node_api=https://$HOST_IP:$api_port

# --- identities: the kubelet, kube-proxy, kube-router ----------------------
pki=$state/pki
sign() { # name subject
	(
		cd "$pki"
		umask 077
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
		printf 'extendedKeyUsage=clientAuth\n' >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 365 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
		rm -f "$1.csr" "$1.ext"
	)
}
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
sign kube-proxy "/CN=system:kube-proxy"
sign kube-router "/CN=kage-kube-router"
write_kubeconfig "$state/kubelet.kubeconfig" "$node_api" "system:node:$NODE_NAME" "$pki/kubelet.crt" "$pki/kubelet.key"
write_kubeconfig "$state/kube-proxy.kubeconfig" "$node_api" system:kube-proxy "$pki/kube-proxy.crt" "$pki/kube-proxy.key"
write_kubeconfig "$state/kube-router.kubeconfig" "$node_api" kage-kube-router "$pki/kube-router.crt" "$pki/kube-router.key"
kadmin apply -f "$node_here/kube-router-rbac.yaml" >/dev/null

# --- containerd + runc, CNI ---------------------------------------------------
cd_dir=$state/containerd
mkdir -p "$cd_dir" "$state/cni/net.d" "$state/cni/ipam"
cat >"$state/cni/net.d/10-kage-node.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "kage-node",
  "plugins": [
    {
      "type": "ptp",
      "mtu": 1500,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
CNI
cat >"$cd_dir/config.toml" <<TOML
# containerd for kage-node (tests/node/node-up.sh)
version = 2
root = "$cd_dir/root"
state = "$cd_dir/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$cd_dir/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/kage-pause:latest"
  # Without CAP_SYS_RESOURCE a negative oom_score_adj cannot be set, and
  # every pod sandbox would fail to start.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
    # The RuntimeClass kata-fc names this handler. There is no Kata here:
    # on this node it is runc, so a sandbox is a hardened container, not a
    # microVM.
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-fc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kata-fc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
TOML
log "starting containerd $(containerd --version | awk '{print $3}') and runc in $NODE_NETNS"
start_in_node containerd containerd --config "$cd_dir/config.toml"
for i in $(seq 1 100); do
	ctr_node version >/dev/null 2>&1 && break
	pid_alive containerd containerd || die "containerd exited; see $state/logs/containerd.log"
	sleep 0.2
	[ "$i" = 100 ] && die "containerd not answering after 20 s; see $state/logs/containerd.log"
done

# --- kubelet -------------------------------------------------------------------
kl=$state/kubelet
mkdir -p "$kl/root" "$kl/pki" "$kl/pod-logs"
printf 'nameserver %s\n' 198.51.100.53 >"$kl/resolv.conf"
cat >"$kl/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1; the kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization:
  mode: Webhook
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $kl/resolv.conf
containerRuntimeEndpoint: unix://$cd_dir/containerd.sock
podLogsDirectory: $kl/pod-logs
# Without it the node reports no ephemeral storage and a Sandbox, which
# requests some, is unschedulable.
localStorageCapacityIsolation: true
failSwapOn: false
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
maxPods: 110
YAML
log "starting kubelet $K8S_VERSION as $NODE_NAME ($NODE_IP)"
start_in_node kubelet "$nodebin/kubelet" \
	--config="$kl/config.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
	--root-dir="$kl/root" --cert-dir="$kl/pki" \
	--hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
	--node-labels="kage.dev/real-node=true" --v=1
for i in $(seq 1 240); do
	[ "$(kadmin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
	pid_alive kubelet kubelet || die "kubelet exited; see $state/logs/kubelet.log"
	sleep 0.5
	[ "$i" = 240 ] && die "node $NODE_NAME not Ready after 120 s; see $state/logs/kubelet.log and containerd.log"
done

# --- kube-proxy and kube-router -------------------------------------------------
cat >"$state/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
mode: iptables
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: false}
YAML
log "starting kube-proxy (iptables) and kube-router $KUBE_ROUTER_VERSION (NetworkPolicy only)"
start_in_node kube-proxy "$nodebin/kube-proxy" --config="$state/kube-proxy.yaml" --v=1
start_in_node kube-router "$nodebin/kube-router" \
	--kubeconfig="$state/kube-router.kubeconfig" \
	--run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
	--enable-cni=false --hostname-override="$NODE_NAME" \
	--health-port=0 --metrics-port=0 --v=1

# --- images: no registry, each imported into the node's containerd ----------
log "building and importing images"
images=$("$node_here/images.sh") || die "tests/node/images.sh failed"
while read -r name archive; do
	ctr_node images import "$archive" >/dev/null ||
		die "importing $name from $archive failed"
done <<<"$images"
version=$(sed -n 's/^VERSION[[:space:]]*[?:]*=[[:space:]]*//p' "$repo_root/Makefile" | head -n1)
controller_image=localhost/kage-controller:$version
VERSION=$version "$repo_root/scripts/image.sh" >/dev/null
mkdir -p "$state/images"
podman save --format docker-archive -o "$state/images/controller.tar" "$controller_image" >/dev/null 2>&1 ||
	die "podman save $controller_image failed"
ctr_node images import "$state/images/controller.tar" >/dev/null
rm -f "$state/images/controller.tar"

# --- CoreDNS, the test hosts -----------------------------------------------------
log "test hosts in $TESTHOSTS_NETNS; CoreDNS in kube-system"
"$node_here/testhosts.sh" up "$NODE_NETNS" >/dev/null
coredns_version=$("$node_here/images.sh" --coredns-version)
sed "s/@COREDNS_VERSION@/$coredns_version/g" "$node_here/coredns.yaml" | kadmin apply -f - >/dev/null
kadmin -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null ||
	die "CoreDNS not ready; kubectl --kubeconfig $state/kubeconfig -n kube-system describe pods -l k8s-app=kube-dns"

# --- kage, as it ships -----------------------------------------------------------
log "kage $version from $controller_image: kubectl apply -k manifests/"
# The CRDs first, established, then the rest (the default class needs them).
kadmin apply -k "$repo_root/manifests" >/dev/null 2>&1 || true
kadmin wait --for=condition=Established crd/sandboxes.kage.dev crd/sandboxclasses.kage.dev --timeout=60s >/dev/null
kadmin apply -k "$repo_root/manifests" >/dev/null
kadmin apply -k "$repo_root/manifests/classes" >/dev/null
kadmin -n kage-system rollout status deployment/kage-controller --timeout=180s >/dev/null ||
	die "kage-controller not ready; kubectl --kubeconfig $state/kubeconfig -n kage-system describe pods"

date -u +%FT%TZ >"$state/node-ready"
log "ready: $NODE_NAME (containerd, runc as RuntimeClass kata-fc, kube-proxy, kube-router), CoreDNS, test hosts, kage $version"
echo "export KUBECONFIG=$state/kubeconfig"
