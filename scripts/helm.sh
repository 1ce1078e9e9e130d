#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the path of helm, building it once from its Go module (no release
# download is reachable here) into ~/.cache/kage/tools/helm-$HELM_VERSION.
#   "$(scripts/helm.sh)" lint charts/kage
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v4.3.2}
out=${XDG_CACHE_HOME:-$HOME/.cache}/kage/tools/helm-$HELM_VERSION
bin=$out/helm
if ! [ -x "$bin" ]; then
	go=go
	command -v go >/dev/null 2>&1 || go=/usr/local/go/bin/go
	command -v "$go" >/dev/null 2>&1 || {
		echo "helm: needs Go (make deps installs it)" >&2
		exit 1
	}
	echo "helm: building helm $HELM_VERSION from helm.sh/helm/v4 into $out (once, a few minutes)" >&2
	mkdir -p "$out"
	GOBIN=$out CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" install -trimpath \
		"helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
fi
echo "$bin"
