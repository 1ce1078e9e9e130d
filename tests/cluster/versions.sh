# SPDX-License-Identifier: Apache-2.0
# Pinned versions of the local control plane; sourced by the cluster scripts.
# Kubernetes v1.35.4 is the newest v1.35 patch the module proxy serves;
# etcd v3.6.5 is the client version that release's go.mod requires.
K8S_VERSION=v1.35.4
ETCD_VERSION=v3.6.5
KWOK_VERSION=v0.7.0

k8s_bin_dir() {
	echo "${XDG_CACHE_HOME:-$HOME/.cache}/kage/k8s-$K8S_VERSION"
}
