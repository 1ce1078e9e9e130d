#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# restart.sh COMPONENT: stops one component of the local control plane and
# starts it again with the command line it was started with (for fault
# tests: an API server or etcd restart).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name=${1:?usage: restart.sh COMPONENT}
[ -f "$state/cmds/$name" ] || die "no recorded command for $name"
mapfile -d '' cmd <"$state/cmds/$name"
stop "$name" "$name"
start "$name" "${cmd[@]}"
log "restarted $name"
