#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-node: the packet suite (tests/node/test_*.py) against the real
# node that make node-up brought up in <repo>/.cluster-node. It does not
# bring the node up: without it, it says so and fails. Arguments go to
# pytest (e.g. -k edits). Measured figures are printed and written to
# .cluster-node/node-tests-results.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
export KAGE_CLUSTER_DIR=${KAGE_CLUSTER_DIR:-$repo/.cluster-node}

if [ ! -f "$KAGE_CLUSTER_DIR/env" ] || [ ! -f "$KAGE_CLUSTER_DIR/kubeconfig" ]; then
	echo "test-node: no real node at $KAGE_CLUSTER_DIR (no env or kubeconfig): run make node-up first" >&2
	exit 2
fi
for ns in kage-node "${KAGE_TESTHOSTS_NETNS:-kage-testhosts}"; do
	if [ ! -e "/run/netns/$ns" ]; then
		echo "test-node: no network namespace $ns: run make node-up first" >&2
		exit 2
	fi
done

cd "$here"
exec "$python" -m pytest -q -s -p no:cacheprovider -o console_output_style=classic "$@"
