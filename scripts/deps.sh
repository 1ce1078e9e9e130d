#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the build, the tests and the local control plane need on
# Debian bookworm. Quiet and quick when everything is already present.
set -euo pipefail

pkgs=(
	build-essential pkg-config clang clang-format cppcheck valgrind
	libuv1-dev libjansson-dev libyaml-dev libssl-dev libnghttp2-dev zlib1g-dev dpkg-dev
	libcmocka-dev python3 python3-pytest openssl curl ca-certificates
	iproute2 procps lua5.1 lua-cjson python3-yaml libclang-rt-14-dev
	# the real node (tests/node)
	containerd runc containernetworking-plugins ipset conntrack util-linux busybox-static
	# the release's arm64 image, run by tests/release (qemu-aarch64)
	qemu-user
)

missing=()
for p in "${pkgs[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq >/dev/null
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The control plane is built from Go modules; Kubernetes v1.35 needs Go 1.25.
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go 1.25 or newer is required to build the local control plane (go not found)" >&2
	exit 1
fi
gov=$(go env GOVERSION)
gov=${gov#go}
if [ "$(printf '%s\n' 1.25 "$gov" | sort -V | head -n1)" != 1.25 ]; then
	echo "deps: Go 1.25 or newer is required to build the local control plane (found go$gov)" >&2
	exit 1
fi

# libcurl and libmicrohttpd, built from Debian's sources with only what kage
# uses (a no-op when already built).
"$(dirname "$0")/libs.sh"
