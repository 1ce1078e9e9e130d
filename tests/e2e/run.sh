#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-e2e: runs the pytest suite against the local control plane,
# bringing one up when none runs and taking down only what it started.
# Then the API client tests once more with the controller under valgrind,
# which fails them on any definite or indirect leak.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
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
if [ $# -eq 0 ]; then
	echo "e2e: the API client suite again, under valgrind" >&2
	KAGE_E2E_WRAPPER="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
		"$python" -m pytest -q -p no:cacheprovider test_client.py -k "not rotated"
fi
