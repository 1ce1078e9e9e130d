#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-faults (KAGE_FAULTS=long) and the short form in make test
# (KAGE_FAULTS=short, the default): the fault tests against the local
# control plane, bringing one up when none runs and taking down only what
# it started. Extra arguments go to pytest (e.g. -k proxy).
#
# They restart that control plane's kube-apiserver and etcd, and stop the
# suite's own controller while each test runs its own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
e2e=$(cd "$here/.." && pwd)
repo=$(cd "$e2e/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
export KAGE_FAULTS=${KAGE_FAULTS:-short}

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

cd "$e2e"
echo "faults: the $KAGE_FAULTS form" >&2
"$python" -m pytest -q -p no:cacheprovider faults/ "$@"
