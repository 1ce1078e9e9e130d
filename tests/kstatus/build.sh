#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the kstatus checker (main.go) into a cache outside the repository,
# once per go.mod, go.sum and source, and prints the binary's path.
#   "$(tests/kstatus/build.sh)" tests/argocd/fixtures/paused.json
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${XDG_CACHE_HOME:-$HOME/.cache}/kage/kstatus
bin=$out/kstatus
stamp=$out/.stamp
want=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -d' ' -f1)

if ! [ -x "$bin" ] || ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	mkdir -p "$out"
	echo "building the kstatus checker into $out" >&2
	(cd "$here" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$bin.tmp" .)
	mv "$bin.tmp" "$bin"
	echo "$want" >"$stamp"
fi
echo "$bin"
