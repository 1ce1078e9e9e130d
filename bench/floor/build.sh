#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench/floor/build.sh: builds kage-floor, the perfect-controller floor of the
# scale benchmark, into a cache outside the repo, keyed by a hash of its
# sources (rebuilt only when they change). Prints one line: BIN=<binary>.
#
#     bench/floor/build.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
command -v go >/dev/null || {
	echo "floor: go is required to build kage-floor" >&2
	exit 1
}

hash=$(cd "$here" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kage/bench/kage-floor-$hash
bin=$cache/kage-floor

if [ ! -x "$bin" ]; then
	echo "floor: building kage-floor into $cache" >&2
	mkdir -p "$cache"
	(cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false -o "$bin.tmp" .)
	mv "$bin.tmp" "$bin"
fi
echo "BIN=$bin"
