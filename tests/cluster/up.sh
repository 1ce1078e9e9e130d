#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make cluster-up: a real Kubernetes control plane on 127.0.0.1 (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler) with kwok playing
# the nodes. Idempotent: a second call reuses what runs. With --check it
# only says, by its exit code, whether a complete cluster runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

KWOK_NODES=${KWOK_NODES:-1}
# Client limits of the cluster's own clients (kube-scheduler,
# kube-controller-manager): "high", the default, lets each send 1000
# requests/s, so that the API server, not a component's client, bounds what
# the cluster does (kube-scheduler's own 50/s would cap pod bindings);
# "default" keeps each component's own limits.
KAGE_CLIENT_LIMITS=${KAGE_CLIENT_LIMITS:-high}
# etcd syncs its log to disk when 1, as a user's cluster runs it; by
# default it does not (--unsafe-no-fsync), which makes writes cheaper.
KAGE_ETCD_FSYNC=${KAGE_ETCD_FSYNC:-0}
case "$KAGE_CLIENT_LIMITS" in
high | default) ;;
*) die "KAGE_CLIENT_LIMITS must be high or default, not '$KAGE_CLIENT_LIMITS'" ;;
esac
case "$KAGE_ETCD_FSYNC" in
0 | 1) ;;
*) die "KAGE_ETCD_FSYNC must be 0 or 1, not '$KAGE_ETCD_FSYNC'" ;;
esac
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

running() {
	local c
	[ -f "$state/env" ] || return 1
	for c in "${components[@]}"; do
		pid_alive "$c" "$c" || return 1
	done
	kadmin get --raw /readyz >/dev/null 2>&1
}

if [ "${1:-}" = --check ]; then
	running
	exit
fi
if running; then
	log "already running (state in $state)"
	echo "export KUBECONFIG=$state/kubeconfig"
	exit 0
fi
if [ -d "$state" ]; then
	log "found a stopped or partial cluster in $state: removing it"
	"$cluster_here/down.sh"
fi

for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
	[ -x "$bindir/$b" ] || die "$bindir/$b is missing: run make build-cluster"
done

mkdir -p "$state"/{pki,etcd,logs,pids}
base=$(choose_ports)
etcd_port=$base
etcd_peer_port=$((base + 1))
api_port=$((base + 2))
kwok_port=$((base + 3))
cat >"$state/env" <<ENV
# Written by tests/cluster/up.sh; sourced by the other scripts and tests.
KAGE_PORT_BASE=$base
ETCD_URL=http://127.0.0.1:$etcd_port
API_URL=https://127.0.0.1:$api_port
KWOK_NODES=$KWOK_NODES
BIN_DIR=$bindir
K8S_VERSION=$K8S_VERSION
KAGE_CLIENT_LIMITS=$KAGE_CLIENT_LIMITS
KAGE_ETCD_FSYNC=$KAGE_ETCD_FSYNC
ENV
api_url=https://127.0.0.1:$api_port

# --- a throwaway CA and the certificates signed by it -----------------
pki=$state/pki
(
	cd "$pki"
	umask 077
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout ca.key -out ca.crt -days 365 -subj "/CN=kage-local-ca" 2>/dev/null
	# Service-account token signing key.
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
	openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
	sign() { # name subject [extensions]
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
		printf '%s\n' "$3" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 365 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
		rm -f "$1.csr" "$1.ext"
	}
	sign apiserver "/CN=kube-apiserver" \
		"subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1${KAGE_APISERVER_SANS:+,$KAGE_APISERVER_SANS}
extendedKeyUsage=serverAuth"
	sign admin "/O=system:masters/CN=kage-admin" "extendedKeyUsage=clientAuth"
	sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
	sign scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
	# The API server's identity towards kubelets (logs, exec) on real nodes.
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
	# kwok plays every kubelet; it gets the admin group rather than one
	# node identity per simulated node.
	sign kwok "/O=system:masters/CN=kwok" "extendedKeyUsage=clientAuth"
)
write_kubeconfig "$state/kubeconfig" "$api_url" kage-admin "$pki/admin.crt" "$pki/admin.key"
write_kubeconfig "$state/controller-manager.kubeconfig" "$api_url" system:kube-controller-manager \
	"$pki/controller-manager.crt" "$pki/controller-manager.key"
write_kubeconfig "$state/scheduler.kubeconfig" "$api_url" system:kube-scheduler \
	"$pki/scheduler.crt" "$pki/scheduler.key"
write_kubeconfig "$state/kwok.kubeconfig" "$api_url" kwok "$pki/kwok.crt" "$pki/kwok.key"

# --- etcd ----------------------------------------------------------------
log "starting etcd $ETCD_VERSION on 127.0.0.1:$etcd_port"
start etcd "$bindir/etcd" \
	--name=kage-local --data-dir="$state/etcd" \
	--listen-client-urls="http://127.0.0.1:$etcd_port" \
	--advertise-client-urls="http://127.0.0.1:$etcd_port" \
	--listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
	--initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
	--initial-cluster="kage-local=http://127.0.0.1:$etcd_peer_port" \
	$([ "$KAGE_ETCD_FSYNC" = 1 ] || echo --unsafe-no-fsync) --log-level=warn
for i in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && break
	pid_alive etcd etcd || die "etcd exited; see $state/logs/etcd.log"
	sleep 0.2
	[ "$i" = 100 ] && die "etcd not healthy after 20 s; see $state/logs/etcd.log"
done

# --- kube-apiserver ----------------------------------------------------------
# A new cluster at the address of an earlier one (ports come from the
# checkout's path) serves other API groups: kubectl's cached discovery of
# the old one would resolve names against it (after make bench, "sandbox"
# to the peer's Sandbox kind) for hours.
rm -rf "${KUBECACHEDIR:-$HOME/.kube/cache}/discovery/127.0.0.1_$api_port"
log "starting kube-apiserver $K8S_VERSION on $api_url"
start kube-apiserver "$bindir/kube-apiserver" \
	--etcd-servers="http://127.0.0.1:$etcd_port" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
	--tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
	--client-ca-file="$pki/ca.crt" \
	--kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key="$pki/apiserver-kubelet-client.key" \
	--authorization-mode=Node,RBAC \
	--enable-admission-plugins=NodeRestriction,PodSecurity,ResourceQuota,RuntimeClass,ServiceAccount \
	--allow-privileged=true \
	--service-cluster-ip-range=10.96.0.0/16 \
	--service-account-issuer=https://kubernetes.default.svc \
	--service-account-key-file="$pki/sa.pub" \
	--service-account-signing-key-file="$pki/sa.key" \
	--profiling=false --v=1 \
	${KAGE_APISERVER_EXTRA_ARGS:-}
for i in $(seq 1 300); do
	[ "$(kadmin get --raw /readyz 2>/dev/null)" = ok ] && break
	pid_alive kube-apiserver kube-apiserver || die "kube-apiserver exited; see $state/logs/kube-apiserver.log"
	sleep 0.5
	[ "$i" = 300 ] && die "kube-apiserver not ready after 150 s; see $state/logs/kube-apiserver.log"
done

# --- kube-controller-manager and kube-scheduler ----------------------------
log "starting kube-controller-manager and kube-scheduler"
start_supervised kube-controller-manager "$bindir/kube-controller-manager" \
	--kubeconfig="$state/controller-manager.kubeconfig" \
	--authentication-kubeconfig="$state/controller-manager.kubeconfig" \
	--authorization-kubeconfig="$state/controller-manager.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port=0 \
	--leader-elect=false --use-service-account-credentials=true \
	--service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
	--cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
	--controllers='*' --v=1 $(
		[ "$KAGE_CLIENT_LIMITS" = default ] || echo --kube-api-qps=1000 --kube-api-burst=1000
	)
# kube-scheduler takes its client limits only from a configuration file;
# with one, it reads its kubeconfig from there too.
cat >"$state/scheduler.yaml" <<SCHED
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $state/scheduler.kubeconfig
$([ "$KAGE_CLIENT_LIMITS" = default ] || printf '  qps: 1000\n  burst: 1000\n')
leaderElection:
  leaderElect: false
SCHED
start_supervised kube-scheduler "$bindir/kube-scheduler" \
	--config="$state/scheduler.yaml" \
	--authentication-kubeconfig="$state/scheduler.kubeconfig" \
	--authorization-kubeconfig="$state/scheduler.kubeconfig" \
	--bind-address=127.0.0.1 --secure-port=0 --leader-elect=false --v=1

# --- kwok: simulated nodes whose pods reach Running with an IP --------------
log "starting kwok $KWOK_VERSION with $KWOK_NODES simulated node(s)"
start_supervised kwok "$bindir/kwok" \
	--kubeconfig="$state/kwok.kubeconfig" \
	--manage-all-nodes=false \
	--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
	--cidr=10.244.0.0/16 --node-ip=127.0.0.1 \
	--node-lease-duration-seconds=40 \
	--server-address="127.0.0.1:$kwok_port"

# KWOK_NODES=0: a cluster whose nodes are real (tests/node), kwok idle.
if [ "$KWOK_NODES" -gt 0 ]; then
	for n in $(seq 0 $((KWOK_NODES - 1))); do
		cat <<NODE
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$n
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$n
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
status:
  capacity: {cpu: "1000", memory: 8Ti, pods: "5000", ephemeral-storage: 64Ti}
  allocatable: {cpu: "1000", memory: 8Ti, pods: "5000", ephemeral-storage: 64Ti}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
NODE
	done | kadmin apply -f - >/dev/null
fi

kadmin apply -f - >/dev/null <<'RC'
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: kata-fc
handler: kata-fc
RC

if [ "$KWOK_NODES" -gt 0 ]; then
	kadmin wait --for=condition=Ready node --all --timeout=120s >/dev/null ||
		die "kwok nodes not Ready; see $state/logs/kwok.log"
fi
# The token and service-account controllers are up once "default" exists.
for i in $(seq 1 120); do
	kadmin -n default get serviceaccount default >/dev/null 2>&1 && break
	sleep 0.5
	[ "$i" = 120 ] && die "default ServiceAccount not created; see $state/logs/kube-controller-manager.log"
done

log "ready: Kubernetes $K8S_VERSION, $KWOK_NODES kwok node(s), RuntimeClass kata-fc"
echo "export KUBECONFIG=$state/kubeconfig"
