#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the pinned control-plane binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, kwok) from the Go module
# proxy into a per-version cache outside the repository, once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"

out=$(k8s_bin_dir)
stamp="$out/.stamp"
want=$( (cat "$here/tools/go.mod" "$here/tools/go.sum" "$here/versions.sh") | sha256sum | cut -d' ' -f1)
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

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
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"

echo "building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION and kwok $KWOK_VERSION into $out (cold: many minutes)" >&2
cd "$here/tools"
go build -trimpath -ldflags "$ldflags" -o "$out/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler \
	k8s.io/kubernetes/cmd/kubectl
go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
# kwok pins its own, older client libraries; building it inside the module
# above would drag them to this release, so it gets its own build list.
GOBIN="$out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
echo "$want" >"$stamp"
echo "built into $out" >&2
