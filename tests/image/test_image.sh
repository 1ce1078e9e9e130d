#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the controller's container image: builds it first with
# scripts/image.sh (cached: seconds when nothing changed; KAGE_IMAGE_NO_BUILD=1
# skips that and tests the image as it is), then
#   - its config: user 65532:65532, entrypoint /kage-controller, the OCI
#     labels (version, revision = $REVISION when set, licences);
#   - its filesystem (podman create + podman export into a temp dir): no
#     /bin/sh nor any other shell, nothing but the binary, shared libraries
#     and the CA bundle;
#   - the binary starts from the image's own root, with the image's loader and
#     libraries only: chroot into the exported root as 65532:65532, and
#     `podman run` with the Deployment's restrictions (read-only root, no
#     capabilities, no privilege escalation, no network);
#   - when the local control plane is up (make cluster-up), in-cluster
#     start-up from the image's root: TLS to the apiserver verified with a
#     service-account CA file, answered 401 for a bogus token;
# and prints the image's size. Exits non-zero if any check fails.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ -z "${VERSION:-}" ]; then
	VERSION=$(sed -n 's/^VERSION[[:space:]]*[?:]*=[[:space:]]*//p' "$repo/Makefile" | head -n1)
fi
IMAGE=${IMAGE:-kage-controller:$VERSION}
max_size=$((40 * 1000 * 1000)) # bytes; today's image is about 20 MB

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
pm() { "${sudo[@]}" podman "$@"; }

pass=0
failed=0
ok() {
	echo "ok - $*"
	pass=$((pass + 1))
}
not_ok() {
	echo "FAIL - $*"
	failed=$((failed + 1))
}
finish() {
	echo "image: $pass passed, $failed failed"
	[ "$failed" -eq 0 ]
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kage-image-test.XXXXXX")
cid=
cleanup() {
	[ -z "$cid" ] || pm rm -f "$cid" >/dev/null 2>&1 || true
	"${sudo[@]}" rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

if [ "${KAGE_IMAGE_NO_BUILD:-0}" != 1 ]; then
	echo "building $IMAGE (scripts/image.sh; log in the output on failure)"
	start=$(date +%s)
	if ! VERSION=$VERSION IMAGE=$IMAGE "$repo/scripts/image.sh" >"$tmp/build.log" 2>&1; then
		tail -n 40 "$tmp/build.log"
		not_ok "scripts/image.sh builds $IMAGE"
		finish
		exit 1
	fi
	ok "scripts/image.sh builds $IMAGE ($(($(date +%s) - start)) s)"
fi
if ! pm image exists "$IMAGE"; then
	not_ok "$IMAGE is in podman's storage"
	finish
	exit 1
fi

# --- config -----------------------------------------------------------------
label() { pm image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMAGE"; }
rev=$(label revision)
# The binary names the commit the image's label names.
want="kage-controller $VERSION (revision $rev)"
if [ "$(label version)" = "$VERSION" ]; then ok "label version is $VERSION"; else not_ok "label version is $VERSION (got '$(label version)')"; fi
if [ -n "${REVISION:-}" ]; then
	if [ "$rev" = "$REVISION" ]; then ok "label revision is $REVISION"; else not_ok "label revision is $REVISION (got '$rev')"; fi
elif [ -n "$rev" ] && [ "$rev" != unknown ]; then
	ok "label revision is set ($rev)"
else
	not_ok "label revision is set (got '$rev')"
fi
if [ "$(label licenses)" = Apache-2.0 ]; then ok "label licenses is Apache-2.0"; else not_ok "label licenses is Apache-2.0 (got '$(label licenses)')"; fi
user=$(pm image inspect --format '{{.Config.User}}' "$IMAGE")
if [ "$user" = 65532:65532 ]; then ok "config user is 65532:65532"; else not_ok "config user is 65532:65532 (got '$user')"; fi
entry=$(pm image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE")
if [ "$entry" = '["/kage-controller"]' ]; then ok "entrypoint is /kage-controller"; else not_ok "entrypoint is /kage-controller (got $entry)"; fi
size=$(pm image inspect --format '{{.Size}}' "$IMAGE")
if [ "$size" -le "$max_size" ]; then
	ok "image size $size bytes ($((size / 1024)) KiB) <= $max_size"
else
	not_ok "image size $size bytes ($((size / 1024)) KiB) <= $max_size"
fi

# --- filesystem ---------------------------------------------------------------
root=$tmp/rootfs
mkdir -p "$root"
cid=$(pm create --network=none "$IMAGE")
pm export "$cid" | "${sudo[@]}" tar -C "$root" -xf -
pm rm "$cid" >/dev/null
cid=
echo "exported the image's filesystem: $(find "$root" -type f | wc -l) files, $(du -sk "$root" | cut -f1) KiB on disk"

# Both the link and what it would name: an absolute symlink in the export
# would point into this machine's root, so test with -L as well as -e.
if [ ! -e "$root/bin/sh" ] && [ ! -L "$root/bin/sh" ] && [ ! -e "$root/usr/bin/sh" ] && [ ! -L "$root/usr/bin/sh" ]; then
	ok "no /bin/sh (nor /usr/bin/sh)"
else
	not_ok "no /bin/sh (nor /usr/bin/sh)"
fi
shells=$(find "$root" ! -type d \( -name sh -o -name bash -o -name dash -o -name ash -o -name busybox -o -name zsh \) -printf '/%P\n')
if [ -z "$shells" ]; then ok "no shell anywhere in the image"; else not_ok "no shell anywhere in the image: $(echo "$shells" | tr '\n' ' ')"; fi
if "${sudo[@]}" chroot "$root" /bin/sh -c true 2>/dev/null; then
	not_ok "chroot ROOT /bin/sh cannot run"
else
	ok "chroot ROOT /bin/sh cannot run"
fi

# Only the two binaries, shared objects (the loader among them) and the CA bundle.
other=$(find "$root" ! -type d -printf '/%P\n' | grep -v -E '^/kage-controller$|^/kage-gate$|\.so(\.[0-9]+)*$|^/etc/ssl/certs/ca-certificates\.crt$' || true)
if [ -z "$other" ]; then
	ok "only /kage-controller, /kage-gate, shared libraries and the CA bundle"
else
	not_ok "only /kage-controller, /kage-gate, shared libraries and the CA bundle; also $(echo "$other" | wc -l) others: $(echo "$other" | head -n 10 | tr '\n' ' ')"
fi
# kage-gate runs as the sandbox pods' init container from this image: it
# must need no loader, whatever the image holds.
if [ -f "$root/kage-gate" ] && ! readelf -l "$root/kage-gate" | grep -q interpreter; then
	ok "/kage-gate is statically linked"
else
	not_ok "/kage-gate is statically linked"
fi
if [ -s "$root/etc/ssl/certs/ca-certificates.crt" ] && grep -q 'BEGIN CERTIFICATE' "$root/etc/ssl/certs/ca-certificates.crt"; then
	ok "CA bundle /etc/ssl/certs/ca-certificates.crt"
else
	not_ok "CA bundle /etc/ssl/certs/ca-certificates.crt"
fi

# --- the binary runs from the image's root ------------------------------------
# chroot: only the exported files are visible, so the image's loader and
# libraries are the ones used (a missing library fails here).
got=$("${sudo[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot --userspec=65532:65532 "$root" /kage-controller --version 2>&1) || true
if [ "$got" = "$want" ]; then
	ok "chroot ROOT /kage-controller --version as 65532:65532 prints '$want'"
else
	not_ok "chroot ROOT /kage-controller --version as 65532:65532 prints '$want' (got '$got')"
fi

# A port nothing listens on is blocked at once: the gate exits 0 and says so.
got=$("${sudo[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot --userspec=65532:65532 "$root" /kage-gate 127.0.0.1:1 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ] && [[ $got =~ ^kage-gate:\ egress\ blocked\ after\ [0-9]+\ ms\ \(2\ connects\)$ ]]; then
	ok "chroot ROOT /kage-gate 127.0.0.1:1 as 65532:65532 exits 0: egress blocked"
else
	not_ok "chroot ROOT /kage-gate 127.0.0.1:1 as 65532:65532 exits 0: egress blocked (rc $rc, got '$got')"
fi

# podman run, restricted as the Deployment restricts the pod. Runtime and
# rlimits as scripts/image.sh chooses them (crun refuses hybrid cgroups;
# without CAP_SYS_RESOURCE podman's default rlimits cannot be set).
run_flags=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
	[ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
	run_flags+=(--runtime runc)
fi
got=$(pm run --rm --network=none --read-only --cap-drop=ALL --security-opt=no-new-privileges \
	"${run_flags[@]}" "$IMAGE" --version 2>&1) || true
if [ "$got" = "$want" ]; then
	ok "podman run $IMAGE --version (read-only, no capabilities) prints '$want'"
else
	not_ok "podman run $IMAGE --version (read-only, no capabilities) prints '$want' (got '$got')"
fi

# In-cluster start-up against the local control plane, when one is up: the
# chroot gets a pod's service-account mount (the cluster's CA, a token that
# is not one) and KUBERNETES_SERVICE_HOST/PORT. A 401 from the apiserver
# means the in-cluster config, TLS verification against that CA and the
# request all worked with the image's libraries.
kc=$repo/.cluster/kubeconfig
server=
ca=
if [ -r "$kc" ]; then
	server=$(sed -n 's/^[[:space:]]*server:[[:space:]]*//p' "$kc" | head -n1)
	ca=$(sed -n 's/^[[:space:]]*certificate-authority-data:[[:space:]]*//p' "$kc" | head -n1)
fi
if [ -n "$server" ] && [ -n "$ca" ] && curl -sk --max-time 2 -o /dev/null "$server/healthz"; then
	hostport=${server#https://}
	sa=$root/var/run/secrets/kubernetes.io/serviceaccount
	"${sudo[@]}" mkdir -p "$sa"
	echo "$ca" | base64 -d | "${sudo[@]}" tee "$sa/ca.crt" >/dev/null
	echo not-a-token | "${sudo[@]}" tee "$sa/token" >/dev/null
	echo kage-system | "${sudo[@]}" tee "$sa/namespace" >/dev/null
	"${sudo[@]}" chmod -R a+rX "$root/var"
	log=$("${sudo[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		KUBERNETES_SERVICE_HOST="${hostport%:*}" KUBERNETES_SERVICE_PORT="${hostport##*:}" \
		timeout 4 chroot --userspec=65532:65532 "$root" /kage-controller --http-addr= 2>&1) || true
	if grep -q '401' <<<"$log" && grep -q 'Unauthorized' <<<"$log"; then
		ok "in-cluster start-up from the image's root reaches $server over verified TLS (401 for a bogus token)"
	else
		not_ok "in-cluster start-up from the image's root reaches $server over verified TLS: $(head -n 5 <<<"$log")"
	fi
else
	echo "skip - in-cluster start-up against the local control plane (none is up: make cluster-up)"
fi

echo "image size: $size bytes ($((size / 1024)) KiB)"
finish
