# SPDX-License-Identifier: Apache-2.0
# kage: build, test and run. `make run` and `make test` do all set-up.

VERSION     ?= 0.1.0
# The commit built, "-dirty" when the tree differs from it; `--version`, the
# kage_build_info metric and the image's labels carry it.
ifndef REVISION
REVISION    := $(shell r=$$(git rev-parse HEAD 2>/dev/null) && { git diff --quiet HEAD 2>/dev/null || r=$$r-dirty; }; echo $${r:-unknown})
endif
CC          ?= cc
PKGS        := libcurl libuv jansson yaml-0.1 openssl libmicrohttpd
PYTHON      ?= /usr/bin/python3

# libcurl and libmicrohttpd are built from Debian's sources with only what
# kage uses (scripts/libs.sh) and linked statically; the rest is Debian's.
KAGE_LIBS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kage/libs
export KAGE_LIBS_DIR
LIBS_STAMP  := $(KAGE_LIBS_DIR)/.stamp
PKG_CONFIG  := PKG_CONFIG_PATH=$(KAGE_LIBS_DIR)/lib/pkgconfig pkg-config

# pkg-config runs once, when a recipe first needs the flags: on a fresh
# machine the packages and libraries appear only after `make deps`, which
# runs after this file is read.
lazy        = $(eval $(1) := $(shell $(2)))$($(1))
PC_CFLAGS   = $(call lazy,PC_CFLAGS,$(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PC_LIBS     = $(call lazy,PC_LIBS,$(PKG_CONFIG) --static --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS = $(call lazy,CMOCKA_LIBS,pkg-config --libs cmocka 2>/dev/null)

WARN        := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wstrict-prototypes
BASE_CFLAGS  = -std=c17 -D_GNU_SOURCE -DKAGE_VERSION='"$(VERSION)"' -DKAGE_REVISION='"$(REVISION)"' \
               $(WARN) -g \
               -Icontroller $(PC_CFLAGS)
LDLIBS       = $(PC_LIBS) -lm
CFLAGS      ?= -O2

# Every .c under controller/ but main.c is library code shared by the binary
# and the unit tests; each tests/unit/test_*.c is its own cmocka program.
LIB_SRC     := $(shell find controller -name '*.c' ! -path controller/main.c | sort)
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))

# Two build flavours: plain (build/) and address+undefined sanitizers (build-asan/).
SAN_FLAGS   := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

.PHONY: all deps build-cluster test test-unit test-asan test-e2e test-gitops image test-image test-fuzz \
        release test-release render-next \
        test-security test-faults test-faults-short test-helm chart \
        lint run up down \
        cluster-up cluster-down clean node-build node-up node-down test-node

all: bin/kage-controller bin/kage-gate

$(LIBS_STAMP): scripts/libs.sh
	@scripts/libs.sh

build/%.o: %.c | $(LIBS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

build-asan/%.o: %.c | $(LIBS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

bin/kage-controller: build/controller/main.o $(LIB_SRC:%.c=build/%.o)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# A second build that renders pods otherwise (KAGE_RENDER_NEXT: one more
# label and annotation), for the e2e test of an upgrade; never shipped.
build/render-next/render.o: controller/reconcile/render.c | $(LIBS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -DKAGE_RENDER_NEXT -MMD -MP -c $< -o $@

build/render-next/kage-controller: build/controller/main.o build/render-next/render.o \
		$(filter-out build/controller/reconcile/render.o,$(LIB_SRC:%.c=build/%.o))
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

render-next: build/render-next/kage-controller

# kage-gate, the sandbox pods' init container, ships in the controller's
# image, which is FROM scratch: linked statically, it needs no library.
GATE_SRC    := gate/main.c gate/canary.c

bin/kage-gate: $(GATE_SRC:%.c=build/%.o)
	@mkdir -p bin
	$(CC) $(CFLAGS) -static -o $@ $^

bin/asan/kage-controller: build-asan/controller/main.o $(LIB_SRC:%.c=build-asan/%.o)
	@mkdir -p bin/asan
	$(CC) $(SAN_FLAGS) -o $@ $^ $(LDLIBS)

build/tests/unit/%: build/tests/unit/%.o $(LIB_SRC:%.c=build/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

build-asan/tests/unit/%: build-asan/tests/unit/%.o $(LIB_SRC:%.c=build-asan/%.o)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

# The gate's probe, tested on its own against local listeners.
build/tests/unit/test_gate: build/gate/canary.o
build-asan/tests/unit/test_gate: build-asan/gate/canary.o

-include $(shell find build build-asan build-fuzz -name "*.d" 2>/dev/null)

# The objects that print the version are rebuilt when it or the commit
# changes: build/.version is rewritten only then.
VERSION_STAMP := build/.version
$(shell mkdir -p build && { echo '$(VERSION) $(REVISION)' | cmp -s - $(VERSION_STAMP) || \
	echo '$(VERSION) $(REVISION)' >$(VERSION_STAMP); })
$(foreach d,build build-asan build-fuzz,$(d)/controller/main.o $(d)/controller/metrics.o \
	$(d)/controller/controller.o $(d)/controller/kube/client.o $(d)/controller/options.o): $(VERSION_STAMP)

deps:
	@scripts/deps.sh

build-cluster: deps
	@tests/cluster/build.sh

test-unit: $(UNIT_SRC:%.c=build/%)
	@scripts/run-unit.sh $^

test-asan: $(UNIT_SRC:%.c=build-asan/%) bin/asan/kage-controller
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		scripts/run-unit.sh $(UNIT_SRC:%.c=build-asan/%)

cluster-up: build-cluster
	@tests/cluster/up.sh

cluster-down:
	@tests/cluster/down.sh

# The e2e suite brings a cluster up unless one already runs, and takes down
# only what it started.
test-e2e: all build-cluster
	@tests/e2e/run.sh

# GitOps health: the Argo CD script (Lua 5.1) and kstatus (Flux) on the
# same Sandbox fixtures.
test-gitops: deps
	@tests/argocd/test_health.sh
	@cd tests/kstatus && go test ./...

# The container image kage-controller:$(VERSION), built with podman from a
# debootstrapped base (no registry is needed), and its checks.
image:
	@VERSION=$(VERSION) REVISION=$(REVISION) scripts/image.sh

test-image:
	@VERSION=$(VERSION) REVISION=$(REVISION) tests/image/test_image.sh

# make release VERSION=x.y.z: dist/install.yaml, the image for linux/amd64
# and linux/arm64 as OCI archives, their SBOMs (SPDX 2.3 JSON) and
# SHA256SUMS (scripts/release.sh; ARCHES=amd64 for amd64 only).
release: deps
	@VERSION=$(VERSION) REVISION=$(REVISION) scripts/release.sh

# The release's artefacts checked, and install.yaml applied to the local
# control plane (tests/release/run.sh).
test-release: deps build-cluster
	@tests/release/run.sh

# A short fuzzing run of every target, for CI.
test-fuzz:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=10

# Static security checks (no cluster): the RBAC of rbac/ and manifests/, and
# the self-tests of the RBAC and NetworkPolicy checkers.
test-security:
	@tests/security/run.sh

# Fault tests (tests/e2e/faults): SIGKILL, control-plane restarts, a proxy
# that drops and stalls the API connection, APF 429s, 409 races, the
# baseline. test-faults is the long form; make test runs the short one.
test-faults: all build-cluster
	@KAGE_FAULTS=long tests/e2e/faults/run.sh

test-faults-short: all build-cluster
	@KAGE_FAULTS=short tests/e2e/faults/run.sh

test: deps all lint test-security test-unit test-asan test-gitops test-image test-release test-fuzz \
      test-e2e test-faults-short test-helm test-node

# The Helm chart (charts/kage): made from manifests/ by scripts/chart.py
# (run it after changing them), linted, rendered and installed.
chart:
	@scripts/chart.py

test-helm: build-cluster
	@tests/helm/run.sh

# A real node (tests/node): kubelet, containerd + runc, kube-proxy,
# kube-router, CoreDNS, test hosts, and kage as its Deployment; then the
# packet suite against it. Root only; `make node-down` removes it all.
node-build: build-cluster
	@tests/node/build.sh

node-up: deps node-build
	@tests/node/node-up.sh

node-down:
	@tests/node/node-down.sh

test-node: deps node-build
	@tests/node/run.sh

lint:
	@scripts/lint.sh

run: deps all build-cluster
	@scripts/run.sh

up: deps all build-cluster
	@scripts/run.sh --background

down:
	@scripts/run.sh --stop

clean:
	rm -rf bin build build-asan build-fuzz dist

# Keep the objects of the unit-test programs between runs.
.SECONDARY:

# Micro-benchmarks (figures, not tests).
build/bench/%: build/bench/%.o $(LIB_SRC:%.c=build/%.o)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-informer
bench-informer: build/bench/informer_bench
	@build/bench/informer_bench

# The benchmarks of bench/README.md: the scale benchmark, then the latency one.
.PHONY: bench bench-scale bench-latency
bench: all build-cluster
	@$(PYTHON) bench/scale.py $(SCALE_ARGS)
	@$(PYTHON) bench/latency.py $(LATENCY_ARGS)

# The side-by-side scale benchmark: kage, agent-sandbox at its defaults and
# tuned, and a floor; writes bench/results/scale-<date>.{md,json,png}.
# Shorter: make bench-scale N=100,1000 STARTUP=1000
SCALE_ARGS = $(if $(N),--sizes $(N)) $(if $(STARTUP),--startup $(STARTUP))
bench-scale: all build-cluster
	@$(PYTHON) bench/scale.py $(SCALE_ARGS)

# The latency benchmark: per sandbox, create -> pod -> Running -> Ready, for
# one at a time, a steady rate and bursts, on its own control plane
# (.cluster-bench, etcd with fsync); writes bench/results/latency-<date>.{md,json}.
# A few minutes: make bench-latency QUICK=1 [SYSTEMS=kage,floor] [REPS=1]
LATENCY_ARGS = $(if $(QUICK),--quick) $(if $(SYSTEMS),--systems $(SYSTEMS)) \
               $(if $(REPS),--reps $(REPS))
bench-latency: all build-cluster
	@$(PYTHON) bench/latency.py $(LATENCY_ARGS)

.PHONY: bench-sandboxes
bench-sandboxes: all build-cluster
	@$(PYTHON) bench/sandboxes.py $(or $(N),100)

# The controller's memory under the Deployment's limit (bench/README.md):
# 200 of the largest Sandboxes, then 10,000 small ones. Shorter:
# make bench-memory LARGE=50 SMALL=1000
.PHONY: bench-memory
bench-memory: all build-cluster
	@$(PYTHON) bench/memory.py $(if $(LARGE),--large $(LARGE)) $(if $(SMALL),--small $(SMALL))

# Fuzzing with libFuzzer (clang): every tests/fuzz/fuzz_*.c is a target
# linked with the controller's code built for fuzzing (address + undefined).
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_FLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 30

build-fuzz/%.o: %.c | $(LIBS_STAMP)
	@mkdir -p $(dir $@)
	clang $(BASE_CFLAGS) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

build-fuzz/tests/fuzz/%: build-fuzz/tests/fuzz/%.o $(LIB_SRC:%.c=build-fuzz/%.o)
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_SRC:%.c=build-fuzz/%)

# make fuzz FUZZ_SECONDS=N: each target for N seconds from its seed corpus.
fuzz: fuzz-build
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_SRC:%.c=build-fuzz/%)
