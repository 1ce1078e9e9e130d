# SPDX-License-Identifier: Apache-2.0
"""What kage renders and what the API server adds to it, as the e2e suites
assert it: whole objects, so these values are part of the contract (they
follow controller/reconcile/render.c). One place for every suite."""

API_VERSION = "kage.dev/v1alpha1"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
NODE = "kwok-node-0"

# The egress rule every sandbox policy has: DNS to kube-dns only.
DNS_RULE = {
    "to": [{
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}
# The namespace's deny-all policy for every sandbox pod.
BASELINE_SPEC = {
    "podSelector": {"matchExpressions": [{"key": "kage.dev/sandbox", "operator": "Exists"}]},
    "policyTypes": ["Ingress", "Egress"],
}
BASELINE_LABELS = {"app.kubernetes.io/managed-by": "kage", "kage.dev/baseline": "true"}
HARDENED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

# The policy gate every sandbox pod gets here (the controller runs out of
# the cluster, so it cannot tell whether an allow list reaches the API
# service): kage-gate from --gate-image, whose default is the controller's
# own image at the Makefile's VERSION.
GATE_IMAGE = "localhost/kage-controller:0.1.0"


def gate_container(resources, pull="IfNotPresent"):
    """The init container kage-gate, with the sandbox container's resources
    (a dict of requests and limits) and hardening."""
    return {
        "name": "kage-gate",
        "image": GATE_IMAGE,
        "imagePullPolicy": pull,
        "command": ["/kage-gate", "--deadline", "60"],
        "resources": resources,
        "securityContext": HARDENED_CONTAINER,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


# The program (sh -c) of a sandbox without command or args: idle until
# told to stop, for kubectl exec.
KEEPALIVE = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
# The script (sh -c WRAPPER kage-sandbox <command> <args>) that runs a
# sandbox's beforeScript, reports its failure, marks it ready, then runs
# the command, or KEEPALIVE when there is none.
BEFORE_SCRIPT_WRAPPER = (
    "rm -f /tmp/.kage-ready\n"
    "if [ -e /tmp/.kage-ready ]; then\n"
    '  echo "kage: the image\'s /tmp/.kage-ready cannot be removed" >/dev/termination-log\n'
    "  exit 125\n"
    "fi\n"
    '/bin/sh -c "$KAGE_BEFORE_SCRIPT"; rc=$?\n'
    'if [ "$rc" -ne 0 ]; then\n'
    '  echo "kage: beforeScript failed with exit code $rc" >/dev/termination-log\n'
    '  exit "$rc"\n'
    "fi\n"
    "touch /tmp/.kage-ready\n"
    'if [ "$#" -eq 0 ]; then\n'
    "  " + KEEPALIVE + "\n"
    "fi\n"
    'exec "$@"\n'
)

# Tolerations the API server (DefaultTolerationSeconds) adds to every pod,
# after the ones the pod brings.
SERVER_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
     "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
     "effect": "NoExecute", "tolerationSeconds": 300},
]
# Pod spec fields the API server, its admission plugins and the scheduler
# fill in, with the only values they may hold here (no service account but
# the default); everything else in a sandbox pod's spec is kage's.
SERVER_FIELDS = {
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "priority": 0,
    "preemptionPolicy": "PreemptLowerPriority",
    "serviceAccount": "default",
    "serviceAccountName": "default",
    "nodeName": NODE,
}
# The same, for a pod that brings no tolerations of its own.
SERVER_SET = {**SERVER_FIELDS, "tolerations": SERVER_TOLERATIONS}


def split_pod_spec(pod, server=SERVER_SET):
    """The pod's spec without the fields the server fills in (which are
    checked to hold their defaults), so the rest can be compared whole."""
    spec = dict(pod["spec"])
    for key, value in server.items():
        if key in spec:
            assert spec.pop(key) == value, key
    return spec
