#!/usr/bin/env bash
# make test-e2e: runs the pytest suite against the local control plane,
# bringing one up when none runs and taking down only what it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
state=${KAGE_CLUSTER_DIR:-$repo/.cluster}
python=${PYTHON:-/usr/bin/python3}

started=0
if ! "$repo/tests/cluster/up.sh" --check >/dev/null 2>&1; then
	"$repo/tests/cluster/up.sh" >/dev/null
	started=1
fi
cleanup() {
	if [ $started = 1 ] && [ -z "${KAGE_KEEP_CLUSTER:-}" ]; then
		"$repo/tests/cluster/down.sh"
	fi
}
trap cleanup EXIT

cd "$here"
"$python" -m pytest -q -p no:cacheprovider "$@"
