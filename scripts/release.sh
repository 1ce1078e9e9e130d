#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make release VERSION=x.y.z: the release's artefacts in dist/ (git-ignored):
#
#   install.yaml                              namespace, CRDs, RBAC, admission
#       policies, Deployment, Service, PDB and the default SandboxClass, from
#       manifests/ and manifests/classes (kubectl kustomize) with the image set
#       to this release; one file, no kustomize needed (kubectl apply -f, or
#       K3s's /var/lib/rancher/k3s/server/manifests)
#   kage-controller-VERSION-linux-amd64.oci.tar  the image (scripts/image.sh)
#       as an OCI archive that `ctr -n k8s.io images import` and
#       `k3s ctr images import` load under its name
#   kage-controller-VERSION-linux-arm64.oci.tar  the same for linux/arm64,
#       cross-compiled here (Dockerfile.arm64), under the same name
#   kage-controller-VERSION.spdx.json         SPDX 2.3 SBOM of the amd64
#       image: every Debian package a file of the image comes from and the
#       Debian sources of the libraries linked statically (curl,
#       libmicrohttpd), with versions
#   kage-controller-VERSION-linux-arm64.spdx.json  the same for arm64
#   SHA256SUMS                                of all the above
#
# The image carries OCI labels (version, revision, source, licenses) and the
# binary the version and commit (--version, kage_build_info).
#
# Environment:
#   VERSION     x.y.z or x.y.z-suffix (required)
#   REVISION    the commit (default: git's HEAD, "-dirty" when the tree differs)
#   IMAGE_REPO  where the image is named and install.yaml points (default
#               localhost/kage-controller: no registry needed, the archive is
#               imported on each node)
#   SOURCE      org.opencontainers.image.source (default: git remote "origin")
#   DIST        output directory (default dist/)
#   ARCHES      the images' architectures (default "amd64 arm64")
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/tests/cluster/versions.sh"

say() { echo "release: $*" >&2; }
die() {
	echo "release: $*" >&2
	exit 1
}

VERSION=${VERSION:-}
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
	die "VERSION must be x.y.z or x.y.z-suffix (make release VERSION=1.2.3), got '$VERSION'"
if [ -z "${REVISION:-}" ]; then
	REVISION=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
	[ "$REVISION" = unknown ] || git -C "$repo" diff --quiet HEAD 2>/dev/null || REVISION=$REVISION-dirty
fi
SOURCE=${SOURCE-$(git -C "$repo" remote get-url origin 2>/dev/null || true)}
IMAGE_REPO=${IMAGE_REPO:-localhost/kage-controller}
image=$IMAGE_REPO:$VERSION
dist=${DIST:-$repo/dist}
read -ra arches <<<"${ARCHES:-amd64 arm64}"
for arch in "${arches[@]}"; do
	case $arch in amd64 | arm64) ;; *) die "ARCHES: unknown architecture '$arch' (amd64, arm64)" ;; esac
done
[ ${#arches[@]} -gt 0 ] || die "ARCHES is empty"
[ "$(uname -m)" = x86_64 ] || die "the release is built on an x86_64 machine (arm64 is cross-compiled)"
[ -n "$SOURCE" ] || say "no SOURCE and no git remote 'origin': the image's source label stays empty"

# The pinned kubectl of the local control plane (its kustomize is the one
# the tests use), else the one on PATH.
kubectl=$(k8s_bin_dir)/kubectl
[ -x "$kubectl" ] || kubectl=$(command -v kubectl || true)
[ -n "$kubectl" ] || die "kubectl is needed to render install.yaml (make build-cluster builds one)"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
pm() { "${sudo[@]}" podman "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kage-release.XXXXXX")
kdir=$repo/build/release-kustomize
cleanup() { rm -rf "$work" "$kdir"; }
trap cleanup EXIT
out=$work/dist
mkdir -p "$out"

# --- install.yaml -------------------------------------------------------------
# kustomize loads bases only by relative path, so the overlay lives in the tree.
mkdir -p "$kdir"
cat >"$kdir/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../manifests
  - ../../manifests/classes
images:
  - name: localhost/kage-controller
    newName: ${IMAGE_REPO}
    newTag: "${VERSION}"
EOF
"$kubectl" kustomize "$kdir" >"$work/rendered.yaml"
# kustomize's images: rewrites container images only; the controller's
# --gate-image argument names the same image (its kage-gate).
sed -i "s|^\( *- --gate-image=\)localhost/kage-controller:.*\$|\1$image|" "$work/rendered.yaml"
python3 "$repo/scripts/release.py" manifest "$VERSION" "$REVISION" <"$work/rendered.yaml" >"$out/install.yaml"
grep -q "image: $image\$" "$out/install.yaml" || die "install.yaml does not run $image"
grep -q -- "- --gate-image=$image\$" "$out/install.yaml" || die "install.yaml's --gate-image is not $image"
say "install.yaml: $(grep -c '^kind:' "$out/install.yaml") objects"

# --- per architecture: the image, its OCI archive and its SBOM -------------------
created=$(TZ=UTC git -C "$repo" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null ||
	date -u +%Y-%m-%dT%H:%M:%SZ)
artefacts=()
for arch in "${arches[@]}"; do
	# Built under a tag of its own in podman's storage (amd64 keeps $image);
	# both archives name the image $image, as the nodes of either
	# architecture run it.
	local_image=$image suffix=
	if [ "$arch" != amd64 ]; then
		local_image=$image-$arch
		suffix=-linux-$arch
	fi
	ARCH=$arch VERSION=$VERSION REVISION=$REVISION SOURCE=$SOURCE IMAGE=$local_image \
		PACKAGES_OUT=$work/packages-$arch.tsv "$repo/scripts/image.sh"

	oci=kage-controller-$VERSION-linux-$arch.oci.tar
	rm -rf "$work/layout" "$work/saved.tar"
	pm save --format oci-archive -o "$work/saved.tar" "$local_image"
	mkdir -p "$work/layout"
	tar -C "$work/layout" -xf "$work/saved.tar"
	python3 "$repo/scripts/release.py" name-oci-layout "$work/layout" "$image"
	# Deterministic member order, owners and times: the same image gives the
	# same archive.
	(cd "$work/layout" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		--format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
		-cf "$out/$oci" oci-layout index.json blobs)
	digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
		"$work/layout/index.json")
	say "$oci: $image $digest, $(($(stat -c %s "$out/$oci") / 1024)) KiB"

	sbom=kage-controller-$VERSION$suffix.spdx.json
	TZ=UTC python3 "$repo/scripts/release.py" sbom "$work/packages-$arch.tsv" "$VERSION" "$REVISION" \
		"$SOURCE" "$image" "$digest" "$created" >"$out/$sbom"
	say "$sbom: $(grep -c '"SPDXID": "SPDXRef-Package-' "$out/$sbom") packages"
	artefacts+=("$oci" "$sbom")
done

# --- checksums, then dist/ in one step -------------------------------------------
(cd "$out" && sha256sum install.yaml "${artefacts[@]}" >SHA256SUMS)
mkdir -p "$dist"
rm -f "$dist/install.yaml" "$dist/SHA256SUMS" "$dist"/kage-controller-*.oci.tar "$dist"/kage-controller-*.spdx.json
mv "$out"/* "$dist/"
say "dist: $(cd "$dist" && ls | tr '\n' ' ')"
