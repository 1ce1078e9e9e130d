#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Argo CD health of Sandboxes: runs manifests/argocd/sandbox-health.lua
# under Lua 5.1 (Argo CD's dialect) on each Sandbox in fixtures/ and
# compares the health status and message exactly; checks that the argocd-cm
# patch carries the very same script. Installs lua5.1 and lua-cjson from
# Debian when missing (as root).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
script=$repo/manifests/argocd/sandbox-health.lua
patch=$repo/manifests/argocd/argocd-cm-patch.yaml
key=resource.customizations.health.kage.dev_Sandbox

have_lua() { lua5.1 -e 'require "cjson"' >/dev/null 2>&1; }
if ! have_lua && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq lua5.1 lua-cjson >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq lua5.1 lua-cjson >/dev/null 2>&1; } || true
fi
if ! have_lua; then
	echo "test_health: needs lua5.1 and lua-cjson (apt-get install lua5.1 lua-cjson)" >&2
	exit 1
fi

# fixture | hs.status | hs.message (exact)
expected=$(
	cat <<'EOF'
running-ready|Healthy|the sandbox runs on node kwok-node-0
creating|Progressing|PodStarting: the pod is being scheduled and started
pending-quota|Progressing|QuotaExceeded: pods "agent-42" is forbidden: exceeded quota: team-a-quota, requested: limits.memory=1Gi, used: limits.memory=4Gi, limited: limits.memory=4Gi
name-conflict|Degraded|NameConflict: pod team-a/agent-42 exists and is not owned by this Sandbox; kage leaves it alone until it is renamed or removed
failed-oom|Degraded|OOMKilled: the sandbox ran out of memory: it used more than its memory limit of 1Gi
invalid-spec|Degraded|InvalidSpec: spec.securityContext.runAsUser: must not be 0 (root); sandboxes never run as root
paused|Suspended|paused: the sandbox is paused: it has no pod; the network policies stay
succeeded|Healthy|completed: the command exited with code 0
expired|Suspended|expired: the sandbox's lifetime ended at 2026-05-04T10:00:00Z; its pod was removed and the Sandbox kept (shutdownPolicy Retain)
terminating|Progressing|the sandbox is being deleted
stale-generation|Progressing|waiting for the controller: it has seen generation 2 of the spec, not yet 3
no-status|Progressing|waiting for the controller
EOF
)

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# The ConfigMap entry is the script, byte for byte.
yaml_python=/usr/bin/python3
/usr/bin/python3 -c 'import yaml' 2>/dev/null || yaml_python=python3
if "$yaml_python" - "$patch" "$key" "$script" <<'EOF'
import difflib, sys, yaml
patch, key, script = sys.argv[1:]
doc = yaml.safe_load(open(patch))
assert doc["apiVersion"] == "v1" and doc["kind"] == "ConfigMap", "not a ConfigMap"
assert doc["metadata"]["name"] == "argocd-cm", "not argocd-cm"
want, got = open(script).read(), doc["data"][key]
sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), got.splitlines(True), script, patch))
sys.exit(want != got)
EOF
then
	pass "argocd-cm $key is sandbox-health.lua"
else
	fail "argocd-cm $key differs from sandbox-health.lua"
fi

# Every fixture has an expectation and every expectation a fixture.
fixtures=$(cd "$here/fixtures" && ls -- *.json | sed 's/\.json$//' | sort)
listed=$(cut -d'|' -f1 <<<"$expected" | sort)
if [ "$fixtures" = "$listed" ]; then
	pass "every fixture has an expectation"
else
	fail "fixtures and expectations differ:"
	diff <(echo "$listed") <(echo "$fixtures") || true
fi

declare -A got_status got_message
while IFS=$'\t' read -r name status message; do
	got_status[$name]=$status
	got_message[$name]=$message
done < <(lua5.1 "$here/run_health.lua" "$script" "$here"/fixtures/*.json)

while IFS='|' read -r name status message; do
	if [ "${got_status[$name]-}" = "$status" ] && [ "${got_message[$name]-}" = "$message" ]; then
		pass "$name: $status"
	else
		fail "$name"
		echo "     want: $status | $message"
		echo "     got:  ${got_status[$name]-(none)} | ${got_message[$name]-}"
	fi
done <<<"$expected"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
