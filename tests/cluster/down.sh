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
# A process that was just killed may still be closing files under the
# state directory: try again for a few seconds, then once more, loudly.
for _ in 1 2 3 4 5; do
	rm -rf "$state" 2>/dev/null && break
	sleep 1
done
rm -rf "$state"
log "stopped and removed $state"
