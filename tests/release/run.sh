#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-release: makes a release (scripts/release.sh, VERSION from the
# Makefile unless set) into a temp directory and checks it as a user would
# meet it (test_release.py): install.yaml against the kustomize sources and
# applied to a local control plane of its own (tests/cluster, state in
# .cluster-release/, taken down afterwards: the e2e suite's cluster never
# sees kage installed this way), each OCI archive's (amd64, arm64) names,
# digests, platform and binary (--version; arm64 under qemu-aarch64), each
# SBOM against its image's files and its build stage's dpkg database, and
# SHA256SUMS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
if [ -z "${VERSION:-}" ]; then
	VERSION=$(sed -n 's/^VERSION[[:space:]]*[?:]*=[[:space:]]*//p' "$repo/Makefile" | head -n1)
fi
export VERSION
export IMAGE_REPO=${IMAGE_REPO:-localhost/kage-controller}
export SOURCE=${SOURCE:-https://example.org/kage.git}
export KAGE_CLUSTER_DIR=$repo/.cluster-release

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
# containerd's ctr imports the OCI archive as K3s's `k3s ctr` does;
# qemu-aarch64 runs the arm64 binary.
if ! command -v containerd >/dev/null 2>&1 || ! command -v ctr >/dev/null 2>&1 ||
	! command -v qemu-aarch64 >/dev/null 2>&1; then
	echo "release: installing containerd and qemu-user (for ctr images import, qemu-aarch64)" >&2
	"${sudo[@]}" apt-get update -qq >/dev/null
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		containerd qemu-user >/dev/null
fi
dist=$(mktemp -d "${TMPDIR:-/tmp}/kage-release-test.XXXXXX")
cleanup() {
	[ -n "${KAGE_KEEP_CLUSTER:-}" ] || "$repo/tests/cluster/down.sh" >/dev/null 2>&1 || true
	"${sudo[@]}" rm -rf "$dist"
}
trap cleanup EXIT

t0=$(date +%s)
"$repo/tests/cluster/up.sh" >"$dist/cluster.log" 2>&1 &
cluster_pid=$!
if ! DIST=$dist/dist "$repo/scripts/release.sh" >"$dist/release.log" 2>&1; then
	tail -n 40 "$dist/release.log"
	echo "FAIL - scripts/release.sh VERSION=$VERSION"
	wait "$cluster_pid" || true
	exit 1
fi
echo "ok - scripts/release.sh VERSION=$VERSION ($(($(date +%s) - t0)) s): $(ls "$dist/dist" | tr '\n' ' ')"
wait "$cluster_pid" || {
	echo "FAIL - the local control plane started"
	exit 1
}

cd "$here"
KAGE_DIST=$dist/dist "$python" -m pytest -q -p no:cacheprovider test_release.py "$@"
echo "release: $(($(date +%s) - t0)) s in all"
