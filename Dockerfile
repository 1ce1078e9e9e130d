# kage-controller image: build on Debian bookworm, run from a minimal root
# holding the binary and the shared libraries it links.
FROM debian:bookworm-slim AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        build-essential pkg-config libcurl4-openssl-dev libuv1-dev libjansson-dev \
        libyaml-dev libssl-dev ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY controller/ controller/
RUN make bin/kage-controller
# Gather the binary's shared libraries (and the loader) for the runtime stage.
RUN mkdir -p /out/lib && cp bin/kage-controller /out/ && \
    ldd bin/kage-controller | awk '/=>/ {print $3} /ld-linux/ {print $1}' | \
        xargs -I{} cp --parents -L {} /out/lib/

FROM scratch
COPY --from=build /out/lib/ /
COPY --from=build /out/kage-controller /kage-controller
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/kage-controller"]
