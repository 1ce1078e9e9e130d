#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the monitoring checker (main.go) into a cache outside the repository,
# once per go.mod, go.sum and source, and prints the binary's path.
#   "$(tests/monitoring/build.sh)" -metrics scrape.txt -rules R -dashboard D
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${XDG_CACHE_HOME:-$HOME/.cache}/kage/monitoring-check
bin=$out/monitoring-check
stamp=$out/.stamp
want=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -d' ' -f1)

go=go
command -v go >/dev/null 2>&1 || go=/usr/local/go/bin/go
if ! [ -x "$bin" ] || ! [ -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	mkdir -p "$out"
	echo "building the monitoring-check checker into $out" >&2
	(cd "$here" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false $go build -trimpath -o "$bin.tmp" .)
	mv "$bin.tmp" "$bin"
	echo "$want" >"$stamp"
fi
echo "$bin"
