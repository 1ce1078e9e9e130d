#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT OUT [DURATION]
# Mints a token for the ServiceAccount (TokenRequest API) and writes a
# kubeconfig at OUT whose user reads it from OUT.token (tokenFile), so the
# token can be replaced on disk without touching the kubeconfig.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: sa-kubeconfig.sh NAMESPACE SERVICEACCOUNT OUT [DURATION]"
ns=$1 sa=$2 out=$3 duration=${4:-24h}
[ -f "$state/env" ] || die "no cluster: run make cluster-up"
. "$state/env"

out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
umask 077
kadmin -n "$ns" create token "$sa" --duration="$duration" >"$out.token.new"
mv "$out.token.new" "$out.token"
cat >"$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kage-local
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 "$state/pki/ca.crt")
users:
- name: system:serviceaccount:$ns:$sa
  user:
    tokenFile: $out.token
contexts:
- name: kage-local
  context: {cluster: kage-local, user: "system:serviceaccount:$ns:$sa", namespace: $ns}
current-context: kage-local
KC
