#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-security: the static security checks, no cluster needed.
#   - check_rbac.py over rbac/ and manifests/ (no wildcard, no secrets,
#     no pods/exec, no escalate/bind/impersonate, the controller's roles
#     exactly as pinned), then its self-test on hostile RBAC snippets;
#   - check_policies.py's self-test on hostile NetworkPolicies.
# With --live, also check_policies.py over the NetworkPolicies, Sandboxes,
# SandboxClasses and sandbox pods of the cluster that kubectl (KUBECTL,
# default kubectl; KUBECONFIG as usual) talks to.
# The end-to-end part (tests/e2e/test_security.py) runs with make test-e2e.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}

failed=0
step() {
	echo "security: $*" >&2
	"$@" || failed=1
}

step "$python" "$here/check_rbac.py"
step "$python" "$here/check_rbac.py" --self-test
step "$python" "$here/check_policies.py" --self-test

if [ "${1:-}" = --live ]; then
	kubectl=${KUBECTL:-kubectl}
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	"$kubectl" get networkpolicies -A -o json >"$tmp/policies.json"
	"$kubectl" get sandboxes.kage.dev -A -o json >"$tmp/sandboxes.json"
	"$kubectl" get sandboxclasses.kage.dev -o json >"$tmp/classes.json"
	"$kubectl" get pods -A -l kage.dev/sandbox -o json >"$tmp/pods.json"
	step "$python" "$here/check_policies.py" "$tmp/policies.json" "$tmp/sandboxes.json" \
		"$tmp/classes.json" "$tmp/pods.json"
fi

if [ $failed = 1 ]; then
	echo "security: FAILED" >&2
	exit 1
fi
echo "security: all checks passed" >&2
