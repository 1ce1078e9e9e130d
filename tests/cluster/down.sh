#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make cluster-down: stops every process cluster-up started (by pid, newest
# first) and removes the state.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -d "$state" ] || exit 0
for c in kage-controller kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
	stop "$c" "$c"
done
rm -rf "$state"
log "stopped and removed $state"
