#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make node-build: the real node's binaries, built once into a cache outside
# the repository: kubelet and kube-proxy from the control plane's release
# (tests/node/tools, the same replace block as tests/cluster/tools), and
# kube-router, whose NetworkPolicy controller is the one K3s embeds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cluster/versions.sh"
KUBE_ROUTER_VERSION=$(sed -n 's/^KUBE_ROUTER_VERSION=\([^ ]*\).*/\1/p' "$here/lib.sh")

out=${XDG_CACHE_HOME:-$HOME/.cache}/kage/node-$K8S_VERSION
stamp=$out/.stamp
want=$( (cat "$here/tools/go.mod" "$here/tools/go.sum" "$here/../cluster/versions.sh" && echo "$KUBE_ROUTER_VERSION") | sha256sum | cut -d' ' -f1)
bins=(kubelet kube-proxy kube-router)

have_all() {
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || return 1
	local b
	for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}
if have_all; then
	exit 0
fi

mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
echo "building kubelet and kube-proxy $K8S_VERSION and kube-router $KUBE_ROUTER_VERSION into $out" >&2
(cd "$here/tools" && go build -trimpath -ldflags "$ldflags" -o "$out/" \
	k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
# kube-router keeps its own build list (its client libraries are older).
GOBIN="$out" go install -trimpath -ldflags "-s -w" \
	"github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
echo "$want" >"$stamp"
echo "built into $out" >&2
