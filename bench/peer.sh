#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/peer.sh: fetches the peer of the scale benchmark, kubernetes-sigs
# agent-sandbox, from the Go module proxy and builds its controller into a
# cache outside the repo (nothing of the peer is committed here). Prints two
# lines: BIN=<controller binary> and DIR=<module source, CRDs and RBAC>.
#
#     bench/peer.sh [VERSION]      (default v1.0.1)
#
# The checksum database does not know the module, hence GONOSUMDB; the
# proxy's zip is still checked against the go.sum hashes of its dependencies.
set -euo pipefail

version=${1:-${AGENT_SANDBOX_VERSION:-v1.0.1}}
module=sigs.k8s.io/agent-sandbox
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kage/bench/agent-sandbox-$version
bin=$cache/agent-sandbox-controller

command -v go >/dev/null || {
	echo "peer: go is required to build $module@$version" >&2
	exit 1
}
export GONOSUMDB=$module${GONOSUMDB:+,$GONOSUMDB}
export GOFLAGS=-mod=mod

dir=$(go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/cmd/agent-sandbox-controller" ]; then
	echo "peer: could not download $module@$version" >&2
	exit 1
fi

if [ ! -x "$bin" ]; then
	echo "peer: building $module@$version (a few minutes the first time)" >&2
	mkdir -p "$cache"
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" ./cmd/agent-sandbox-controller)
	mv "$bin.tmp" "$bin"
fi
echo "BIN=$bin"
echo "DIR=$dir"
