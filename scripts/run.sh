#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make run / make up / make down: the local control plane, kage installed as
# an administrator would install it, the controller running under its own
# ServiceAccount (never admin), and the example sandbox.
#   (no flag)     bring everything up, show the sandbox, then follow the
#                 controller's log until Ctrl-C, which stops everything
#   --background  bring everything up and return (make up)
#   --stop        stop everything (make down)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tests/cluster/lib.sh"
mode=${1:-foreground}

if [ "$mode" = --stop ]; then
	exec "$cluster_here/down.sh"
fi

"$cluster_here/up.sh" >/dev/null
. "$state/env"
export KUBECONFIG=$state/kubeconfig

# kage as an administrator installs it: CRD, namespace, RBAC, admission.
kubectl apply -k "$repo/crds" >/dev/null
kubectl wait --for=condition=Established crd/sandboxes.kage.dev --timeout=60s >/dev/null
kubectl apply -f "$repo/manifests/namespace.yaml" >/dev/null
kubectl apply -k "$repo/rbac" >/dev/null
# The default SandboxClass for untrusted code: a Sandbox no class applies
# to gets no pod.
kubectl wait --for=condition=Established crd/sandboxclasses.kage.dev --timeout=60s >/dev/null
kubectl apply -k "$repo/manifests/classes" >/dev/null
# The admission policies: only kage's controller writes what isolates a
# sandbox, a Sandbox reads only what its author may read, a class is used
# only where it is granted, and the controller's token makes only hardened
# sandbox pods.
kubectl apply -k "$repo/admission" >/dev/null

# The controller runs as system:serviceaccount:kage-system:kage-controller.
if ! pid_alive kage-controller kage-controller; then
	"$cluster_here/sa-kubeconfig.sh" kage-system kage-controller "$state/controller.kubeconfig" 24h
	start kage-controller "$repo/bin/kage-controller" --kubeconfig "$state/controller.kubeconfig" \
		--http-addr "127.0.0.1:$((KAGE_PORT_BASE + 4))"
	for i in $(seq 1 100); do
		grep -q '"caches synced"' "$state/logs/kage-controller.log" 2>/dev/null && break
		pid_alive kage-controller kage-controller ||
			die "kage-controller exited; see $state/logs/kage-controller.log"
		sleep 0.2
		[ "$i" = 100 ] && die "kage-controller did not sync in 20 s; see $state/logs/kage-controller.log"
	done
fi

# The example sandbox in a namespace that enforces Pod Security "restricted".
kubectl apply -f - >/dev/null <<NS
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  labels: {pod-security.kubernetes.io/enforce: restricted}
NS
kubectl -n demo apply -f "$repo/manifests/examples/sandbox.yaml" >/dev/null
kubectl -n demo wait --for=condition=Ready sandbox/example --timeout=60s >/dev/null
echo
kubectl -n demo get sandboxes,pods,networkpolicies
cat <<MSG

kage runs against the local control plane (Kubernetes $K8S_VERSION at $API_URL):

  export KUBECONFIG=$state/kubeconfig PATH=$BIN_DIR:\$PATH
  kubectl -n demo get sandbox example -o yaml
  curl http://127.0.0.1:$((KAGE_PORT_BASE + 4))/metrics

MSG

if [ "$mode" = --background ]; then
	echo "Controller log: $state/logs/kage-controller.log. Stop everything with: make down"
	exit 0
fi

echo "Following the controller's log; Ctrl-C stops everything."
echo
trap '"$cluster_here/down.sh"; exit 0' INT TERM
tail -n +1 -f "$state/logs/kage-controller.log" &
tailpid=$!
while pid_alive kage-controller kage-controller; do
	sleep 1
done
kill "$tailpid" 2>/dev/null || true
echo "kage-controller exited; see $state/logs/kage-controller.log" >&2
"$cluster_here/down.sh"
exit 1
