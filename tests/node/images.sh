#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The images of the real-node test bed, as OCI archives for
# `ctr -n k8s.io images import`, built once into a cache outside the
# repository and reused while their inputs are unchanged:
#
#   localhost/kage-pause:latest        the static pause (tests/node/pause.c) at /pause
#   localhost/kage-probe:latest        Debian's busybox-static at /bin/busybox, every
#                                      applet a symlink in /bin
#   localhost/kage-coredns:<version>   CoreDNS with the test bed's plugins
#                                      (tests/node/coredns) at /coredns
#
# Usage:
#   images.sh                   build if needed; print "<image> <archive>" per image
#   images.sh --coredns-binary  build if needed; print the CoreDNS binary's path (the
#                               test hosts' resolver runs it outside any container)
#   images.sh --coredns-version print the CoreDNS version (the image's tag); builds nothing
#
# The cache key is a hash of every input: this script, oci_archive.py,
# pause.c, the CoreDNS module, the busybox binary and the C and Go
# toolchains' versions. Needs cc (static libc), go and busybox-static
# (scripts/deps.sh installs them); installs nothing.
#
# Environment:
#   KAGE_NODE_IMAGES_DIR  the cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/kage/node-images)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${KAGE_NODE_IMAGES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kage/node-images}
busybox=/bin/busybox

die() {
	echo "images: $*" >&2
	exit 1
}

# The CoreDNS release the module requires, without the "v": the image's tag.
coredns_version() {
	local v
	v=$(awk '$1 == "github.com/coredns/coredns" {print $2; exit}
		$1 == "require" && $2 == "github.com/coredns/coredns" {print $3; exit}' "$here/coredns/go.mod")
	[ -n "$v" ] || die "tests/node/coredns/go.mod requires no github.com/coredns/coredns"
	echo "${v#v}"
}

mode=archives
case ${1:-} in
"") ;;
--coredns-binary) mode=binary ;;
--coredns-version)
	coredns_version
	exit 0
	;;
*) die "unknown argument ${1}: want nothing, --coredns-binary or --coredns-version" ;;
esac
[ $# -le 1 ] || die "one argument at most"

version=$(coredns_version)
images=(
	"localhost/kage-pause:latest kage-pause.tar"
	"localhost/kage-probe:latest kage-probe.tar"
	"localhost/kage-coredns:$version kage-coredns.tar"
)

command -v cc >/dev/null 2>&1 || die "cc not found (scripts/deps.sh installs build-essential)"
command -v go >/dev/null 2>&1 || die "go not found (scripts/deps.sh says which Go is needed)"
if ! [ -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
	die "$busybox not found: install Debian's busybox-static (scripts/deps.sh does)"
fi
# The static libc links only when libc6-dev's libc.a is there.
case $(cc -print-file-name=libc.a) in
/*) ;;
*) die "no static libc (libc6-dev)" ;;
esac

key=$(
	{
		cat "$0" "$here/oci_archive.py" "$here/pause.c" \
			"$here/coredns/go.mod" "$here/coredns/go.sum" "$here/coredns/main.go"
		sha256sum "$busybox"
		cc --version | head -n1
		go env GOVERSION GOARCH
	} | sha256sum | cut -c1-16
)
out=$cache/$key

# print: the lines this run was asked for.
print() {
	local line
	if [ "$mode" = binary ]; then
		echo "$out/coredns"
		return
	fi
	for line in "${images[@]}"; do
		echo "${line% *} $out/${line#* }"
	done
}

if [ -f "$out/.done" ]; then
	print
	exit 0
fi

mkdir -p "$cache"
# One build at a time per cache; a second caller waits and then finds it done.
exec 9>"$cache/.lock"
flock 9
if [ -f "$out/.done" ]; then
	print
	exit 0
fi

t0=$(date +%s)
say() { echo "images: [$(($(date +%s) - t0)) s] $*" >&2; }
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

say "building pause"
cc -static -O2 -s -std=c17 -Wall -Wextra -Werror -o "$tmp/pause" "$here/pause.c"

say "building CoreDNS $version (with a cold Go build cache: up to ten minutes)"
(
	cd "$here/coredns"
	CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' -o "$tmp/coredns" .
)
# Read whole: grep -q stopping early would fail the pipe with SIGPIPE.
said=$("$tmp/coredns" -version)
grep -qx "CoreDNS-$version" <<<"$said" || die "the CoreDNS built says it is not $version: $said"

py() { python3 "$here/oci_archive.py" "$@"; }

say "writing the archives"
py --name "localhost/kage-pause:latest" --out "$tmp/kage-pause.tar" \
	--file "$tmp/pause:/pause:0755" --entrypoint /pause

# Every applet as /bin/<applet>; /tmp for whatever a probe writes, any uid.
links=()
while read -r applet; do
	[ "$applet" = busybox ] || links+=(--link "/bin/$applet:busybox")
done < <("$busybox" --list | sort)
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/group"
# PID 1 without a TERM handler would ignore the kubelet's SIGTERM: the default
# command exits on it at once.
py --name "localhost/kage-probe:latest" --out "$tmp/kage-probe.tar" \
	--file "$busybox:/bin/busybox:0755" "${links[@]}" \
	--file "$tmp/passwd:/etc/passwd:0644" --file "$tmp/group:/etc/group:0644" \
	--dir /tmp:1777 --env PATH=/bin \
	--cmd=/bin/sh --cmd=-c --cmd="trap 'exit 0' TERM INT; sleep 2147483647 & wait"

py --name "localhost/kage-coredns:$version" --out "$tmp/kage-coredns.tar" \
	--file "$tmp/coredns:/coredns:0755" --entrypoint /coredns

mkdir -p "$out"
for f in pause coredns kage-pause.tar kage-probe.tar kage-coredns.tar; do
	mv "$tmp/$f" "$out/$f"
done
touch "$out/.done"
say "built into $out"
print
