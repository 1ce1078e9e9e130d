# SPDX-License-Identifier: Apache-2.0
# kage-controller image. `make image` (scripts/image.sh) builds it with podman
# as kage-controller:$(VERSION); with no registry, the script makes the base
# below locally (debootstrap) when it is not already in podman's storage.
#
# Stage 1 builds the binary on Debian bookworm. Stage 2 starts from scratch
# and holds only the binary, the shared libraries ldd lists for it (the
# loader included) and the CA bundle: no shell, no package manager, a fixed
# non-root UID/GID matching the Deployment's runAsUser/runAsGroup.

FROM debian:bookworm-slim AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config ca-certificates dpkg-dev \
        libuv1-dev libjansson-dev libyaml-dev libssl-dev libnghttp2-dev zlib1g-dev >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# libcurl and libmicrohttpd from Debian's sources, trimmed to what kage uses
# and linked statically (see scripts/libs.sh); a layer of its own, so it is
# rebuilt only when the script changes.
ENV KAGE_LIBS_DIR=/opt/kage-libs
COPY scripts/libs.sh scripts/
RUN scripts/libs.sh
COPY Makefile ./
COPY controller/ controller/
COPY gate/ gate/
ARG VERSION=0.1.0
ARG REVISION=unknown
RUN make -j"$(nproc)" VERSION="$VERSION" REVISION="$REVISION" bin/kage-controller bin/kage-gate
# /out becomes the runtime root: the stripped binaries (kage-gate, the
# sandbox pods' init container, is static: a dynamic one fails the build),
# every library ldd
# resolves (copied as regular files under the path the loader searches) and
# the program interpreter. A library ldd cannot find fails the build.
RUN set -eu; \
    mkdir -p /out/etc/ssl/certs; \
    strip --strip-unneeded -o /out/kage-controller bin/kage-controller; \
    strip --strip-unneeded -o /out/kage-gate bin/kage-gate; \
    if readelf -l bin/kage-gate | grep -q interpreter; then exit 1; fi; \
    if ldd bin/kage-controller | grep 'not found'; then exit 1; fi; \
    ldd bin/kage-controller \
      | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' \
      | sort -u | while read -r lib; do cp --parents -L "$lib" /out/; done; \
    interp=$(readelf -l bin/kage-controller | sed -n 's/.*interpreter: \(.*\)]/\1/p'); \
    test -e "/out$interp"; \
    cp -L /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    chmod -R a+rX,go-w /out
# What the SBOM is made from (scripts/release.sh; not copied into the image):
# the Debian release, the package that owns each file in /out with its
# version and source version, and the two libraries linked statically.
RUN set -eu; \
    mkdir -p /sbom; . /etc/os-release; \
    printf 'os\t%s\t%s\n' "$ID" "$VERSION_ID" >/sbom/packages.tsv; \
    fmt='${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}'; \
    cd /out; find . ! -type d -printf '/%P\n' | sort | while read -r f; do \
      case "$f" in /kage-controller|/kage-gate) continue;; esac; \
      if [ "$f" = /etc/ssl/certs/ca-certificates.crt ]; then pkg=ca-certificates; \
      else pkg=; for p in "$f" "/usr$f" "$(readlink -f "$f")" "$(readlink -f "/usr$f")"; do \
        pkg=$(dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break; done; fi; \
      [ -n "$pkg" ] || { echo "no Debian package owns $f" >&2; exit 1; }; \
      printf 'file\t%s\t' "$f"; dpkg-query -W -f="$fmt\n" "$pkg"; \
    done >>/sbom/packages.tsv; \
    sed -n 's/^\([^ ]*\) [^ ]* from \([^_]*\)_\(.*\)$/static\t\1\t\2\t\3/p' \
      "$KAGE_LIBS_DIR/VERSIONS" >>/sbom/packages.tsv; \
    test "$(grep -c '^static' /sbom/packages.tsv)" = 2

FROM scratch
# scripts/image.sh adds org.opencontainers.image.version, .revision and
# .source with --label (a LABEL from build arguments is taken from the layer
# cache when only the label's value changed).
LABEL org.opencontainers.image.title=kage-controller \
      org.opencontainers.image.description="kage: isolated sandboxes for untrusted code on Kubernetes" \
      org.opencontainers.image.licenses=Apache-2.0
COPY --from=build /out/ /
USER 65532:65532
ENTRYPOINT ["/kage-controller"]
