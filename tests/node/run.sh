#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-node: the packet suite (tests/node/test_*.py) against the real
# node of <repo>/.cluster-node. When no node runs, it brings one up (make
# node-up) and takes it down at the end; a node that already ran is left
# running. Arguments go to pytest (e.g. -k edits). Measured figures are
# printed and written to .cluster-node/node-tests-results.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
export KAGE_CLUSTER_DIR=${KAGE_CLUSTER_DIR:-$repo/.cluster-node}

started=0
if ! "$here/node-up.sh" --check >/dev/null 2>&1; then
	"$here/node-up.sh" >/dev/null
	started=1
fi
cleanup() {
	if [ $started = 1 ] && [ -z "${KAGE_KEEP_NODE:-}" ]; then
		# Processes killed by the first pass may still be exiting; a
		# second pass finds them gone. Only a second failure fails.
		"$here/node-down.sh" || {
			echo "node-down failed; trying again in 3 s" >&2
			sleep 3
			"$here/node-down.sh"
		}
	fi
}
trap cleanup EXIT

cd "$here"
"$python" -m pytest -q -s -p no:cacheprovider -o console_output_style=classic "$@"
