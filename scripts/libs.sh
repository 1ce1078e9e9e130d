#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the two libraries kage links statically, from Debian bookworm's own
# source packages (signatures checked by apt, Debian's patches applied):
#
#   libcurl        HTTP and HTTPS only: OpenSSL, nghttp2 (HTTP/2), zlib and
#                  the threaded resolver. Debian's libcurl4 also links
#                  Kerberos, LDAP, SSH, RTMP, PSL, IDN, brotli and zstd;
#                  loading those costs the controller about 1 MB of resident
#                  memory and a lot of start-up work for protocols it never
#                  speaks.
#   libmicrohttpd  plain HTTP for /healthz, /readyz and /metrics. Debian's
#                  build links GnuTLS (with p11-kit, nettle, gmp, tasn1):
#                  another 2 MB resident for TLS the endpoint does not serve.
#
# Both go into $KAGE_LIBS_DIR (default ~/.cache/kage/libs) as static
# archives with headers and pkg-config files; the Makefile links them. The
# build is skipped when the directory already holds a build made by this
# version of this script (its SHA-256 is the stamp), so editing the script
# rebuilds, and so does KAGE_LIBS_REBUILD=1 (e.g. to pick up a new Debian
# security update of either source package).
#
# Needs apt (sources are fetched with a private source list derived from the
# system's "deb" entries, so /etc/apt is not touched), dpkg-source
# (dpkg-dev), a C compiler and libssl-dev, libnghttp2-dev, zlib1g-dev.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kage
dest=${KAGE_LIBS_DIR:-$cache/libs}
stamp=$(sha256sum "$here/libs.sh" | cut -d' ' -f1)

if [ "${KAGE_LIBS_REBUILD:-0}" != 1 ] && [ -f "$dest/.stamp" ] &&
	[ "$(cat "$dest/.stamp")" = "$stamp" ]; then
	# Newer than the script now (a fresh clone's files are new): make
	# stops asking until the script changes.
	touch "$dest/.stamp"
	exit 0
fi

say() { echo "libs: $*" >&2; }
die() {
	echo "libs: $*" >&2
	exit 1
}
host=${KAGE_LIBS_HOST:-}
cross=()
if [ -n "$host" ]; then
	export CC=${CC:-$host-gcc}
	cross=(--host="$host")
fi
for tool in apt-get dpkg-source "${CC:-cc}" make; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (run make deps)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/kage-libs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A private apt state: every enabled "deb" source of the system, as deb-src.
mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
n=0
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -r "$f" ] || continue
	n=$((n + 1))
	case $f in
	*.sources) sed -E 's/^Types:.*$/Types: deb-src/' "$f" >"$work/apt/parts/$n.sources" ;;
	*) sed -nE 's/^deb[[:space:]]/deb-src /p' "$f" >"$work/apt/parts/$n.list" ;;
	esac
done
apt_opts=(
	-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$work/apt/parts"
	-o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
	-o "APT::Sandbox::User=root" -q
)
say "fetching the Debian sources of curl and libmicrohttpd"
apt-get "${apt_opts[@]}" update >"$work/apt.log" 2>&1 ||
	die "apt-get update of the deb-src lists failed: $(tail -n3 "$work/apt.log")"
(cd "$work" && apt-get "${apt_opts[@]}" source curl libmicrohttpd >>"$work/apt.log" 2>&1) ||
	die "apt-get source curl libmicrohttpd failed: $(tail -n3 "$work/apt.log")"

curl_src=$(find "$work" -maxdepth 1 -type d -name 'curl-*' | head -n1)
mhd_src=$(find "$work" -maxdepth 1 -type d -name 'libmicrohttpd-*' | head -n1)
[ -n "$curl_src" ] && [ -n "$mhd_src" ] || die "unpacked sources not found in $work"

# Installed into a staging root first (DESTDIR), so an interrupted build
# never leaves a half-made $dest behind.
stage=$work/stage
jobs=$(nproc 2>/dev/null || echo 2)

# build NAME SRC MAKE_DIRS... -- CONFIGURE_FLAGS...: configure, then build and
# install only the library, its headers and its pkg-config file.
build() {
	local name=$1 src=$2 dirs=() d
	shift 2
	while [ "$1" != -- ]; do
		dirs+=("$1")
		shift
	done
	shift
	say "building $name ($(basename "$src"))"
	(
		cd "$src"
		# The temp dir's random name would end up in the debug info and so
		# in the binary's GNU build ID: mapped to a fixed path, the same
		# sources give the same archives, and the image the same binary.
		./configure --prefix="$dest" --disable-shared --enable-static --with-pic "${cross[@]}" \
			CFLAGS="${CFLAGS:--g -O2} -ffile-prefix-map=$work=/usr/src/kage-libs" "$@"
		for d in "${dirs[@]}"; do
			make -j"$jobs" -C "$d"
			make -C "$d" install DESTDIR="$stage"
		done
		make install-pkgconfigDATA DESTDIR="$stage"
	) >"$work/$name.log" 2>&1 || die "building $name failed: $(tail -n5 "$work/$name.log")"
}

build curl "$curl_src" lib include -- \
	--with-openssl --with-nghttp2 --with-zlib \
	--without-brotli --without-zstd --without-libpsl --without-libidn2 --without-librtmp \
	--without-libssh2 --without-gssapi --without-libgsasl \
	--disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
	--disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
	--disable-gopher --disable-mqtt --disable-ftp --disable-file --disable-ntlm \
	--disable-netrc --disable-cookies --disable-manual --enable-threaded-resolver \
	--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs
grep -q '^#define USE_NGHTTP2 1' "$curl_src/lib/curl_config.h" ||
	die "curl was configured without HTTP/2 (is libnghttp2-dev installed?)"

build libmicrohttpd "$mhd_src" src/microhttpd src/include -- \
	--enable-https=no --enable-epoll=yes --disable-doc --disable-examples --disable-curl \
	--disable-postprocessor --disable-bauth --disable-dauth --disable-httpupgrade

{
	echo "curl $(basename "$curl_src" | sed 's/^curl-//') from $(basename "$(ls "$work"/curl_*.dsc)" .dsc)"
	echo "libmicrohttpd $(basename "$mhd_src" | sed 's/^libmicrohttpd-//') from $(basename "$(ls "$work"/libmicrohttpd_*.dsc)" .dsc)"
} >"$stage$dest/VERSIONS"
echo "$stamp" >"$stage$dest/.stamp"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$stage$dest" "$dest"
say "built into $dest: $(tr '\n' ';' <"$dest/VERSIONS")"
