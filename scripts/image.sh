#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make image: builds the controller's container image with podman, tagged
# kage-controller:$VERSION (the tag manifests/deployment.yaml runs).
#
# No container registry is reachable here, so nothing is ever pulled
# (--pull=never). A base image the Dockerfile names that podman's storage
# lacks (debian:<suite> or debian:<suite>-slim) is made locally: debootstrap
# (minbase) from the Debian mirror apt is configured with, into a temp dir,
# then `podman import` under that name. Later runs reuse it, and the build's
# layer cache makes a run with unchanged sources take seconds.
#
# Installs podman (runc where cgroups are hybrid v1/v2, debootstrap when a
# base has to be made) with apt if missing. Runs podman as root (sudo if
# needed). Writes only to temp dirs and podman's storage.
#
# Environment:
#   VERSION                  image tag and the binary's --version (default:
#                            the Makefile's VERSION)
#   IMAGE                    full name (default kage-controller:$VERSION)
#   ARCH                     amd64 (default: the Dockerfile, built natively)
#                            or arm64 (Dockerfile.arm64: cross-compiled on
#                            an amd64 builder into an image for linux/arm64)
#   REVISION                 the commit, for --version, the build-info metric
#                            and the image's label (default: git's HEAD,
#                            "-dirty" when the tree differs from it)
#   SOURCE                   the org.opencontainers.image.source label
#                            (default: the URL of git's remote "origin";
#                            none: the label is empty)
#   KAGE_IMAGE_REBUILD_BASE  1: make the base anew even if present
#   PACKAGES_OUT             also copy the build stage's package list
#                            (/sbom/packages.tsv, what the SBOM is made
#                            from) to this file
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ -z "${VERSION:-}" ]; then
	VERSION=$(sed -n 's/^VERSION[[:space:]]*[?:]*=[[:space:]]*//p' "$repo/Makefile" | head -n1)
fi
IMAGE=${IMAGE:-kage-controller:$VERSION}
if [ -z "${REVISION:-}" ]; then
	REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
	[ "$REVISION" = unknown ] || git -C "$repo" diff --quiet HEAD 2>/dev/null || REVISION=$REVISION-dirty
fi
SOURCE=${SOURCE-$(git -C "$repo" remote get-url origin 2>/dev/null || true)}

t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }
say() { echo "image: [$(elapsed)] $*" >&2; }
die() {
	echo "image: $*" >&2
	exit 1
}

# The image's platform: the amd64 build runs as it always has (no
# --platform), so its image stays the same.
platform=()
case ${ARCH:-amd64} in
amd64) dockerfile=$repo/Dockerfile ;;
arm64)
	dockerfile=$repo/Dockerfile.arm64
	platform=(--platform linux/arm64)
	;;
*) die "ARCH must be amd64 or arm64, got '$ARCH'" ;;
esac

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

# apt_install PKG...: installs the Debian packages that are not installed, quietly.
apt_install() {
	local p status missing=()
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[ "$status" = installed ] || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq >/dev/null
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	say "installed ${missing[*]}"
}

command -v podman >/dev/null 2>&1 || apt_install podman
# podman as root (the image lands in root's storage).
pm() { "${sudo[@]}" podman "$@"; }

# How RUN steps are run. crun (podman's default runtime) refuses a hybrid
# cgroup v1/v2 hierarchy ("cgroups in hybrid mode not supported"): runc
# copes. Without CAP_SYS_RESOURCE (as in this sandbox) the default rlimits
# podman asks for cannot be set, so ask for this shell's hard limits (NPROC
# at most pid_max: podman lowers its own NPROC limit, which its runtime
# inherits, to that).
run_flags=()
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
	[ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	command -v runc >/dev/null 2>&1 || apt_install runc
	run_flags+=(--runtime runc)
fi
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] || run_flags+=(--ulimit "nofile=$nofile:$nofile")
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max 2>/dev/null || echo 32768)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
run_flags+=(--ulimit "nproc=$nproc:$nproc")

# apt_uri SUITE: the URI of the first enabled "deb" source for SUITE in apt's
# configuration (one-line .list and deb822 .sources files); empty if none.
apt_uri() {
	local suite=$1 f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		case $f in
		*.sources)
			awk -v s="$suite" '
				BEGIN { RS = ""; FS = "\n" }
				{
					types = ""; uris = ""; suites = ""; enabled = "yes"
					for (i = 1; i <= NF; i++) {
						if ($i ~ /^#/ || !match($i, /^[A-Za-z-]+:/)) continue
						key = tolower(substr($i, 1, RLENGTH - 1))
						val = substr($i, RLENGTH + 1)
						gsub(/^[ \t]+|[ \t]+$/, "", val)
						if (key == "types") types = val
						else if (key == "uris") uris = val
						else if (key == "suites") suites = val
						else if (key == "enabled") enabled = tolower(val)
					}
					if (enabled == "no" || (" " types " ") !~ / deb /) next
					if ((" " suites " ") ~ (" " s " ")) { split(uris, u, " "); print u[1]; exit }
				}' "$f"
			;;
		*)
			awk -v s="$suite" '
				$1 == "deb" {
					i = 2
					if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
					if ($(i + 1) == s) { print $i; exit }
				}' "$f"
			;;
		esac
	done | sed -n '/^https\?:\/\//{p;q}'
}

# make_base NAME SUITE: debootstraps Debian SUITE (minbase) and imports it into
# podman's storage as NAME.
make_base() {
	local name=$1 suite=$2 mirror security updates tmp root
	mirror=$(apt_uri "$suite")
	# Another release than this machine's: its mirror serves that one too.
	[ -n "$mirror" ] || mirror=$(apt_uri "$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null)")
	mirror=${mirror:-http://deb.debian.org/debian}
	security=$(apt_uri "$suite-security")
	updates=$(apt_uri "$suite-updates")
	command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap

	tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/kage-base.XXXXXX")
	# debootstrap mounts proc and sys in the target while it runs: unmount
	# anything left there before removing the tree, and never cross into it.
	# shellcheck disable=SC2064
	trap "cleanup_base '$tmp'" EXIT
	root=$tmp/rootfs
	say "no $name in podman's storage: debootstrap $suite (minbase) from $mirror"
	if ! "${sudo[@]}" debootstrap --variant=minbase "$suite" "$root" "$mirror" \
		>"$tmp/debootstrap.out" 2>&1; then
		tail -n 20 "$tmp/debootstrap.out" "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
		die "debootstrap failed"
	fi

	# apt sources as in Debian's own images (the release, its updates and
	# security), from this machine's mirrors; no package lists or caches.
	{
		printf 'Types: deb\nURIs: %s\nSuites: %s%s\nComponents: main\n' \
			"$mirror" "$suite" "${updates:+ $suite-updates}"
		printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		if [ -n "$security" ]; then
			printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$suite"
			printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
		fi
	} | "${sudo[@]}" tee "$root/etc/apt/sources.list.d/debian.sources" >/dev/null
	"${sudo[@]}" rm -rf "$root/etc/apt/sources.list" "$root/var/lib/apt/lists/"* \
		"$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
		"$root/var/log/"*.log "$root/etc/resolv.conf" "$root/etc/hostname"

	"${sudo[@]}" tar --numeric-owner --xattrs -C "$root" -cf "$tmp/rootfs.tar" \
		--exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
	pm import --quiet \
		--message "debootstrap --variant=minbase $suite $mirror (made by scripts/image.sh)" \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'CMD ["bash"]' \
		--change "LABEL org.opencontainers.image.description=Debian $suite minbase, debootstrapped locally" \
		"$tmp/rootfs.tar" "$name" >/dev/null
	cleanup_base "$tmp"
	trap - EXIT
	say "imported $name"
}

cleanup_base() {
	local dir=$1 m
	[ -d "$dir" ] || return 0
	# Deepest mounts first.
	awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
		while read -r m; do "${sudo[@]}" umount -l "$m" 2>/dev/null || true; done
	"${sudo[@]}" rm -rf --one-file-system "$dir"
}

# Every image the Dockerfile's FROM lines name, less scratch and earlier stages.
mapfile -t bases < <(awk '
	toupper($1) == "FROM" {
		img = ""
		for (i = 2; i <= NF; i++) if ($i !~ /^--/) { img = $i; break }
		if (img != "" && img != "scratch" && !(tolower(img) in stage)) print img
		for (i = 2; i < NF; i++) if (toupper($i) == "AS") stage[tolower($(i + 1))] = 1
	}' "$dockerfile" | sort -u)

for base in "${bases[@]}"; do
	if [ "${KAGE_IMAGE_REBUILD_BASE:-0}" != 1 ] && pm image exists "$base"; then
		continue
	fi
	case $base in
	debian:* | docker.io/debian:* | docker.io/library/debian:*)
		tag=${base##*:}
		make_base "$base" "${tag%-slim}"
		;;
	*) die "$base is not in podman's storage and no registry is reachable to pull it" ;;
	esac
done

old=$(pm image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
say "building $IMAGE"
pm build --pull=never --network=host --layers "${run_flags[@]}" "${platform[@]}" \
	--build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
	--label org.opencontainers.image.version="$VERSION" \
	--label org.opencontainers.image.revision="$REVISION" \
	--label org.opencontainers.image.source="$SOURCE" \
	-t "$IMAGE" -f "$dockerfile" "$repo"
new=$(pm image inspect --format '{{.Id}}' "$IMAGE")
# The image this tag named before, now untagged: drop it (kept if in use).
if [ -n "$old" ] && [ "$old" != "$new" ]; then
	pm rmi "$old" >/dev/null 2>&1 || true
fi
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE ${new:0:12}, $((size / 1024)) KiB"

if [ -n "${PACKAGES_OUT:-}" ]; then
	# The build stage again: every layer is cached from the build above.
	stage="$IMAGE-build"
	pm build --pull=never --network=host --layers "${run_flags[@]}" "${platform[@]}" --target build --quiet \
		--build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
		-t "$stage" -f "$dockerfile" "$repo" >/dev/null
	cid=$(pm create "$stage")
	pm cp "$cid:/sbom/packages.tsv" "$PACKAGES_OUT"
	pm rm "$cid" >/dev/null
	say "package list of the build stage in $PACKAGES_OUT"
fi
