#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-helm: the chart (charts/kage) against the sources it is made
# from, rendered with each value, and installed with helm into a local
# control plane of its own (tests/cluster, state in .cluster-helm/, taken
# down afterwards).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
export KAGE_CLUSTER_DIR=$repo/.cluster-helm
HELM=$("$repo/scripts/helm.sh")
export HELM
log=$(mktemp "${TMPDIR:-/tmp}/kage-helm-cluster.XXXXXX")
cleanup() {
	[ -n "${KAGE_KEEP_CLUSTER:-}" ] || "$repo/tests/cluster/down.sh" >/dev/null 2>&1 || true
	rm -f "$log"
}
trap cleanup EXIT
t0=$(date +%s)
"$repo/tests/cluster/up.sh" >"$log" 2>&1 || {
	tail -n 40 "$log"
	echo "FAIL - the local control plane started"
	exit 1
}
cd "$here"
"$python" -m pytest -q -p no:cacheprovider test_chart.py "$@"
echo "helm: $(($(date +%s) - t0)) s in all"
