#!/usr/bin/env bash
# make run / make up / make down: the local control plane for trying kage.
#   (no flag)     bring everything up, then stay in the foreground until
#                 Ctrl-C, which stops everything this started
#   --background  bring everything up and return (make up)
#   --stop        stop everything (make down)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cluster=$repo/tests/cluster
mode=${1:-foreground}

if [ "$mode" = --stop ]; then
	exec "$cluster/down.sh"
fi

"$cluster/up.sh" >/dev/null
. "$repo/.cluster/env"
cat <<MSG

The local control plane runs (Kubernetes $K8S_VERSION at $API_URL). Use it with:

  export KUBECONFIG=$repo/.cluster/kubeconfig
  export PATH=$BIN_DIR:\$PATH
  kubectl get nodes

MSG

if [ "$mode" = --background ]; then
	echo "Stop it with: make down"
	exit 0
fi

echo "Press Ctrl-C to stop it."
trap '"$cluster/down.sh"; exit 0' INT TERM
while "$cluster/up.sh" --check >/dev/null 2>&1; do
	sleep 2
done
echo "the control plane stopped; see $repo/.cluster/logs" >&2
exit 1
