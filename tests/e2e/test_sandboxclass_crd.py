# SPDX-License-Identifier: Apache-2.0
"""The SandboxClass CustomResourceDefinition on a real API server: what it
refuses at admission (and with which field path and message), what it
accepts exactly as written, how kubectl explains and lists it. No
controller runs here.

SandboxClasses are cluster-scoped, so no namespace cleans them up: every
class made here carries this run's label and is deleted at the end."""

import copy
import json
import uuid

import pytest

from conftest import REPO, wait_for

CRD = REPO / "crds" / "sandboxclasses.kage.dev.yaml"
API_VERSION = "kage.dev/v1alpha1"
RUN = uuid.uuid4().hex[:8]
RUN_LABEL = "e2e.kage.dev/run"
# Printed by the API server after blocking errors (wrong type, missing or
# unsupported value, too many items, too long): CEL rules are then skipped.
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the "
    "object was invalid; correct the existing errors to complete validation"
)


@pytest.fixture(scope="module")
def crd(kubectl, without_controller):
    kubectl.run("apply", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/sandboxclasses.kage.dev")
    # kubectl's discovery cache learns about the new resource on first use.
    wait_for(lambda: kubectl.run("get", "sandboxclasses", check=False).returncode == 0,
             timeout=30, what="sandboxclasses to be served")
    yield kubectl.json("get", "crd", "sandboxclasses.kage.dev")
    kubectl.run("delete", "sandboxclasses", "-l", f"{RUN_LABEL}={RUN}", "--ignore-not-found",
                check=False)


def name_of(suffix):
    return f"e2e-{RUN}-{suffix}"


def sandbox_class(suffix="bad", annotations=None, **spec):
    metadata = {"name": name_of(suffix), "labels": {RUN_LABEL: RUN}}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": "SandboxClass", "metadata": metadata, "spec": spec}


def field_errors(stderr, name):
    """The field errors of a 422 Invalid answer, one string each."""
    head = f'The SandboxClass "{name}" is invalid: '
    assert head in stderr, stderr
    rest = stderr.split(head, 1)[1]
    if rest.startswith("\n"):
        return [line[2:] for line in rest.splitlines() if line.startswith("* ")]
    return [rest.strip()]


CIDR_MESSAGE = "must be a valid IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32"
QUANTITY_MESSAGE = "must be a Kubernetes quantity such as 500m, 1, 2Gi or 512Mi"
SUBDOMAIN_MESSAGE = (
    "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
    "starting and ending with a letter or digit"
)
QUALIFIED = (
    "an optional DNS-1123 subdomain prefix and /, then at most 63 letters, digits, -, _ "
    "and ., starting and ending with a letter or digit"
)
LABEL_VALUE_MESSAGE = (
    "must be a label value: at most 63 letters, digits, '-', '_' and '.', "
    "starting and ending with a letter or digit"
)
RESERVED_MESSAGE = (
    "must not set kage.dev/sandbox or app.kubernetes.io/managed-by: "
    "kage sets these labels on every sandbox pod itself"
)


def toleration(**t):
    return {"tolerations": [{"key": "sandboxes", "operator": "Exists", "effect": "NoSchedule"}, t]}


# (id, spec, the one field error the API server reports, blocking?)
# A blocking error (unsupported value, too many items, too long a string)
# makes the server skip the CEL rules and say so in a second line.
INVALID = [
    ("runtime-class-not-subdomain", {"runtimeClassName": "Kata_FC"},
     f'spec.runtimeClassName: Invalid value: "Kata_FC": {SUBDOMAIN_MESSAGE}', False),
    ("runtime-class-too-long", {"runtimeClassName": "k" * 254},
     "spec.runtimeClassName: Too long: may not be more than 253 bytes", True),
    ("max-cpu-zero", {"maxResources": {"cpu": "0"}},
     'spec.maxResources.cpu: Invalid value: "0": must be greater than zero', False),
    ("max-cpu-zero-integer", {"maxResources": {"cpu": 0}},
     "spec.maxResources.cpu: Invalid value: 0: must be greater than zero", False),
    ("max-memory-not-a-quantity", {"maxResources": {"memory": "lots"}},
     f'spec.maxResources.memory: Invalid value: "lots": {QUANTITY_MESSAGE}', False),
    ("default-memory-negative", {"defaultResources": {"memory": "-1Gi"}},
     'spec.defaultResources.memory: Invalid value: "-1Gi": must be greater than zero', False),
    ("default-storage-not-a-quantity", {"defaultResources": {"ephemeralStorage": "2 GiB"}},
     f'spec.defaultResources.ephemeralStorage: Invalid value: "2 GiB": {QUANTITY_MESSAGE}', False),
    ("default-cpu-above-max", {"defaultResources": {"cpu": "2"}, "maxResources": {"cpu": 1}},
     "spec.defaultResources.cpu: Invalid value: must not exceed maxResources.cpu: 2 > 1", False),
    ("default-memory-above-max-other-unit",
     {"defaultResources": {"memory": "1536Mi"}, "maxResources": {"memory": "1Gi"}},
     "spec.defaultResources.memory: Invalid value: must not exceed maxResources.memory: 1536Mi > 1Gi",
     False),
    ("default-storage-above-max",
     {"defaultResources": {"ephemeralStorage": "3Gi"}, "maxResources": {"ephemeralStorage": "2G"}},
     "spec.defaultResources.ephemeralStorage: Invalid value: "
     "must not exceed maxResources.ephemeralStorage: 3Gi > 2G", False),
    ("lifetime-zero", {"maxLifetimeSeconds": 0},
     "spec.maxLifetimeSeconds: Invalid value: 0: "
     "spec.maxLifetimeSeconds in body should be greater than or equal to 1", False),
    ("lifetime-over-a-year", {"maxLifetimeSeconds": 31536001},
     "spec.maxLifetimeSeconds: Invalid value: 31536001: "
     "spec.maxLifetimeSeconds in body should be less than or equal to 31536000", False),
    ("allowed-cidr-prefix-too-long", {"egress": {"allowedCIDRs": ["10.0.0.0/8", "10.0.0.0/33"]}},
     f'spec.egress.allowedCIDRs[1]: Invalid value: "10.0.0.0/33": {CIDR_MESSAGE}', False),
    ("allowed-cidr-duplicate", {"egress": {"allowedCIDRs": ["10.0.0.0/8", "10.0.0.0/8"]}},
     'spec.egress.allowedCIDRs[1]: Duplicate value: "10.0.0.0/8"', False),
    ("allowed-cidrs-too-many",
     {"egress": {"allowedCIDRs": [f"10.{i}.0.0/16" for i in range(65)]}},
     "spec.egress.allowedCIDRs: Too many: 65: must have at most 64 items", True),
    ("denied-cidr-without-prefix", {"egress": {"deniedCIDRs": ["169.254.169.254"]}},
     f'spec.egress.deniedCIDRs[0]: Invalid value: "169.254.169.254": {CIDR_MESSAGE}', False),
    ("denied-cidr-ipv4-mapped", {"egress": {"deniedCIDRs": ["::ffff:a9fe:a9fe/128"]}},
     f'spec.egress.deniedCIDRs[0]: Invalid value: "::ffff:a9fe:a9fe/128": {CIDR_MESSAGE}', False),
    ("denied-cidr-ipv6-garbage", {"egress": {"deniedCIDRs": ["fd00::zz/8"]}},
     f'spec.egress.deniedCIDRs[0]: Invalid value: "fd00::zz/8": {CIDR_MESSAGE}', False),
    ("policy-gate-unknown", {"egress": {"policyGate": "Off"}},
     'spec.egress.policyGate: Unsupported value: "Off": supported values: "Required", "Disabled"',
     True),
    ("node-selector-too-many", {"nodeSelector": {f"k{i}": "v" for i in range(33)}},
     "spec.nodeSelector: Too many: 33: must have at most 32 items", True),
    ("node-selector-bad-key", {"nodeSelector": {"kata ready": "true"}},
     f'spec.nodeSelector: Invalid value: key "kata ready" is not a qualified name: {QUALIFIED}',
     False),
    ("node-selector-bad-value", {"nodeSelector": {"kata": "-yes"}},
     f'spec.nodeSelector[kata]: Invalid value: "-yes": {LABEL_VALUE_MESSAGE}', False),
    ("toleration-unknown-operator", toleration(key="a", operator="In"),
     'spec.tolerations[1].operator: Unsupported value: "In": supported values: "Exists", "Equal"',
     True),
    ("toleration-unknown-effect", toleration(key="a", effect="NoRun"),
     'spec.tolerations[1].effect: Unsupported value: "NoRun": '
     'supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"', True),
    ("toleration-empty-key-equal", toleration(operator="Equal", value="x"),
     "spec.tolerations[1].operator: Invalid value: "
     "must be Exists when key is empty (a toleration of every taint)", False),
    ("toleration-exists-with-value", toleration(key="a", operator="Exists", value="x"),
     "spec.tolerations[1].value: Invalid value: must be empty when operator is Exists", False),
    ("toleration-seconds-without-no-execute",
     toleration(key="a", effect="NoSchedule", tolerationSeconds=30),
     "spec.tolerations[1].tolerationSeconds: Forbidden: may only be set when effect is NoExecute",
     False),
    ("toleration-bad-key", toleration(key="a/b/c"),
     f'spec.tolerations[1].key: Invalid value: "a/b/c": must be a qualified name: {QUALIFIED}',
     False),
    ("pod-labels-sandbox-key", {"podLabels": {"team": "a", "kage.dev/sandbox": "other"}},
     f"spec.podLabels: Forbidden: {RESERVED_MESSAGE}", False),
    ("pod-labels-managed-by-key", {"podLabels": {"app.kubernetes.io/managed-by": "helm"}},
     f"spec.podLabels: Forbidden: {RESERVED_MESSAGE}", False),
    ("pod-labels-bad-key", {"podLabels": {"-team": "a"}},
     f'spec.podLabels: Invalid value: key "-team" is not a qualified name: {QUALIFIED}', False),
    ("pod-labels-name-part-too-long", {"podLabels": {"example.com/" + "n" * 64: "a"}},
     f'spec.podLabels: Invalid value: key "example.com/{"n" * 64}" is not a qualified name: '
     f"{QUALIFIED}", False),
    ("pod-labels-prefix-too-long", {"podLabels": {"p" * 254 + "/name": "a"}},
     f'spec.podLabels: Invalid value: key "{"p" * 254}/name" is not a qualified name: {QUALIFIED}',
     False),
    ("pod-labels-bad-value", {"podLabels": {"team": "a b"}},
     f'spec.podLabels[team]: Invalid value: "a b": {LABEL_VALUE_MESSAGE}', False),
    ("pod-labels-value-too-long", {"podLabels": {"team": "v" * 64}},
     "spec.podLabels.team: Too long: may not be more than 63 bytes", True),
    ("pod-annotations-bad-key", {"podAnnotations": {"io.katacontainers/": "x"}},
     f'spec.podAnnotations: Invalid value: key "io.katacontainers/" is not a qualified name: '
     f"{QUALIFIED}", False),
    ("pod-annotations-value-too-long", {"podAnnotations": {"note": "x" * 4097}},
     "spec.podAnnotations.note: Too long: may not be more than 4096 bytes", True),
    ("pod-annotations-too-many", {"podAnnotations": {f"a{i}": "x" for i in range(65)}},
     "spec.podAnnotations: Too many: 65: must have at most 64 items", True),
]


@pytest.mark.parametrize(
    "spec,error,blocking",
    [pytest.param(spec, error, blocking, id=case) for case, spec, error, blocking in INVALID],
)
def test_invalid_class_is_refused_naming_the_field(kubectl, crd, request, spec, error, blocking):
    manifest = sandbox_class(request.node.callspec.id, **spec)
    name = manifest["metadata"]["name"]
    proc = kubectl.create(manifest, check=False)
    assert proc.returncode == 1, proc.stdout
    assert error in proc.stderr
    # The case triggers this error and nothing else.
    assert field_errors(proc.stderr, name) == ([error, NOT_CHECKED] if blocking else [error])
    gone = kubectl.run("get", "sandboxclass", name, check=False)
    assert gone.returncode == 1
    assert f'sandboxclasses.kage.dev "{name}" not found' in gone.stderr


def test_float_quantity_is_refused(kubectl, crd):
    """A bare YAML float is neither an integer nor a string: quote it."""
    manifest = sandbox_class("float-cpu", defaultResources={"cpu": 0.5})
    proc = kubectl.create(manifest, check=False)
    assert proc.returncode == 1
    errors = field_errors(proc.stderr, manifest["metadata"]["name"])
    assert ('spec.defaultResources.cpu: Invalid value: "number": '
            'spec.defaultResources.cpu in body must be of type integer,string: "number"') in errors


def test_unknown_field_is_refused_by_strict_field_validation(kubectl, crd):
    manifest = sandbox_class("unknown-field", maxPods=3)
    proc = kubectl.apply(manifest, "--validate=strict", check=False)
    assert proc.returncode == 1
    assert (
        'SandboxClass in version "v1alpha1" cannot be handled as a SandboxClass: '
        'strict decoding error: unknown field "spec.maxPods"'
    ) in proc.stderr


def test_name_must_be_a_dns_subdomain(kubectl, crd):
    proc = kubectl.create({"apiVersion": API_VERSION, "kind": "SandboxClass",
                           "metadata": {"name": "Small_Class"}, "spec": {}}, check=False)
    assert proc.returncode == 1
    assert 'metadata.name: Invalid value: "Small_Class": a lowercase RFC 1123 subdomain' in proc.stderr


def get_class(kubectl, suffix):
    return kubectl.json("get", "sandboxclass", name_of(suffix))


FULL_SPEC = {
    "runtimeClassName": "kata-fc",
    "defaultResources": {"cpu": "500m", "memory": "512Mi", "ephemeralStorage": "1Gi"},
    "maxResources": {"cpu": 4, "memory": "8Gi", "ephemeralStorage": "20Gi"},
    "maxLifetimeSeconds": 86400,
    "egress": {
        "allowedCIDRs": ["0.0.0.0/0", "2001:db8::/32"],
        "deniedCIDRs": ["169.254.0.0/16", "10.42.0.0/16", "10.43.0.0/16", "fd00::/8"],
    },
    "nodeSelector": {"katacontainers.io/kata-runtime": "true", "kubernetes.io/arch": "amd64"},
    "tolerations": [
        {"key": "kage.dev/sandboxes", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 30},
        {"key": "tier", "operator": "Equal", "value": "sandbox", "effect": "PreferNoSchedule"},
        {"operator": "Exists"},
    ],
    "podAnnotations": {
        "io.katacontainers.config.hypervisor.default_memory": "2048",
        "io.katacontainers.config.hypervisor.default_vcpus": "2",
        "example.com/note": "a longer value, with spaces and: punctuation",
    },
    "podLabels": {"team": "platform", "example.com/tier": "sandbox", "empty": ""},
}


def test_full_class_is_accepted_as_written(kubectl, crd):
    kubectl.apply(sandbox_class("full", **FULL_SPEC))
    obj = get_class(kubectl, "full")
    assert obj["spec"] == FULL_SPEC
    assert "namespace" not in obj["metadata"]
    assert "status" not in obj


def test_class_without_spec_is_accepted(kubectl, crd):
    manifest = sandbox_class("bare")
    del manifest["spec"]
    kubectl.apply(manifest)
    assert "spec" not in get_class(kubectl, "bare")


def test_empty_ceiling_is_kept_as_an_empty_list(kubectl, crd):
    """allowedCIDRs: [] (no destination) must not turn into 'no ceiling'."""
    kubectl.apply(sandbox_class("closed", egress={"allowedCIDRs": []}))
    assert get_class(kubectl, "closed")["spec"] == {"egress": {"allowedCIDRs": []}}


def test_default_class_annotation_round_trips(kubectl, crd):
    """Server-side dry run: a real default class would change which class
    other suites' Sandboxes get."""
    annotations = {"sandboxclass.kage.dev/is-default-class": "true"}
    manifest = sandbox_class("default", annotations=annotations, runtimeClassName="kata-fc")
    out = json.loads(kubectl.run("create", "--dry-run=server", "-o", "json", "-f", "-",
                                 input=json.dumps(manifest)).stdout)
    assert out["metadata"]["annotations"] == annotations
    assert out["spec"] == {"runtimeClassName": "kata-fc"}


@pytest.mark.parametrize("spec", [
    pytest.param({"defaultResources": {"cpu": "1000m", "memory": "1Gi", "ephemeralStorage": "2Gi"},
                  "maxResources": {"cpu": 1, "memory": "1024Mi", "ephemeralStorage": 2147483648}},
                 id="default-equal-to-max-in-other-units"),
    pytest.param({"defaultResources": {"cpu": "0.5", "memory": "1e9"}}, id="default-without-max"),
    pytest.param({"maxResources": {"cpu": "100m"}, "defaultResources": {"memory": "64Gi"}},
                 id="max-and-default-of-different-resources"),
    pytest.param({"maxLifetimeSeconds": 1}, id="lifetime-1"),
    pytest.param({"maxLifetimeSeconds": 31536000}, id="lifetime-one-year"),
    pytest.param({"egress": {"allowedCIDRs": ["203.0.113.5/24", "::/0"]}}, id="cidr-host-bits-and-ipv6"),
    pytest.param({"egress": {"deniedCIDRs": ["169.254.169.254/32", "FD00::/8"]}}, id="denied-only"),
    pytest.param({"runtimeClassName": "a" * 63 + ".kata-fc"}, id="runtime-class-subdomain"),
    pytest.param({"podLabels": {"p" * 253 + "/" + "n" * 63: "v" * 63}}, id="longest-label"),
    pytest.param({"tolerations": [{"key": "a", "value": "b"}]}, id="toleration-operator-unset"),
    pytest.param({"tolerations": [{"key": "a", "operator": "Exists", "value": ""}]},
                 id="toleration-exists-empty-value"),
    pytest.param({"nodeSelector": {}, "podAnnotations": {}, "podLabels": {}, "tolerations": []},
                 id="empty-maps-and-lists"),
])
def test_edge_values_are_accepted_as_written(kubectl, crd, spec):
    suffix = f"edge-{uuid.uuid4().hex[:8]}"
    proc = kubectl.apply(sandbox_class(suffix, **spec), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sandboxclass.kage.dev/{name_of(suffix)} created"
    assert get_class(kubectl, suffix)["spec"] == spec


def test_largest_class_stays_within_the_cel_cost_budget(kubectl, crd):
    """Every list and map at its maximum with the longest keys: still
    admitted (the API server refuses a request whose rules cost too much)."""
    def key(i):
        return f"{i:03d}" + "p" * 250 + "/" + "n" * 63

    spec = {
        "runtimeClassName": "r" * 253,
        "defaultResources": {"cpu": "1" * 63 + "m", "memory": "1" * 64, "ephemeralStorage": "1" * 64},
        "maxResources": {"cpu": "1" * 64, "memory": "1" * 64, "ephemeralStorage": "1" * 64},
        "maxLifetimeSeconds": 31536000,
        "egress": {
            "allowedCIDRs": [f"2001:db8:{i:x}::/48" for i in range(64)],
            "deniedCIDRs": [f"10.{i}.0.0/16" for i in range(64)],
        },
        "nodeSelector": {key(i): "v" * 63 for i in range(32)},
        "tolerations": [{"key": key(i), "operator": "Equal", "value": "v" * 63,
                         "effect": "NoExecute", "tolerationSeconds": i} for i in range(32)],
        "podAnnotations": {key(i): "a" * 4096 for i in range(64)},
        "podLabels": {key(i): "v" * 63 for i in range(64)},
    }
    # create, not apply: the last-applied annotation would pass its 256 KiB cap.
    proc = kubectl.create(sandbox_class("largest", **spec), check=False)
    assert proc.returncode == 0, proc.stderr[:2000]
    got = get_class(kubectl, "largest")["spec"]
    assert len(got["podAnnotations"]) == 64 and len(got["tolerations"]) == 32


def test_crd_names_scope_and_columns(crd):
    spec = crd["spec"]
    assert spec["group"] == "kage.dev"
    assert spec["scope"] == "Cluster"
    assert spec["names"] == {
        "kind": "SandboxClass", "listKind": "SandboxClassList", "plural": "sandboxclasses",
        "singular": "sandboxclass", "shortNames": ["sbxc"], "categories": ["kage"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert "subresources" not in version  # no status: a class is configuration only
    assert "status" not in version["schema"]["openAPIV3Schema"]["properties"]
    assert [(c["name"], c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]] == [
        ("Runtime", "string", ".spec.runtimeClassName"),
        ("MaxCPU", "string", ".spec.maxResources.cpu"),
        ("MaxMemory", "string", ".spec.maxResources.memory"),
        ("MaxLifetime", "integer", ".spec.maxLifetimeSeconds"),
        ("Age", "date", ".metadata.creationTimestamp"),
    ]


def test_every_schema_field_has_a_description(crd):
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    missing = []

    def walk(node, path):
        if "description" not in node and path != ".metadata":
            missing.append(path)
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    walk(schema, "")
    assert missing == []


def explain(kubectl, field):
    return " ".join(kubectl.run("explain", field).stdout.split())


def test_kubectl_explain_describes_egress(kubectl, crd):
    text = explain(kubectl, "sandboxclass.spec.egress")
    assert "GROUP: kage.dev KIND: SandboxClass VERSION: v1alpha1 FIELD: egress <Object>" in text
    assert ("Limits on the Sandboxes' spec.egress.allow: a ceiling their CIDRs must lie inside, "
            "and ranges always carved out of them; and whether their pods wait for the policy to "
            "be enforced.") in text
    assert ("policyGate <string> enum: Required, Disabled Required (the default) gives each "
            "sandbox pod an init container, kage-gate from the controller's image, that lets the "
            "sandbox's code start only once the node enforces the pod's egress policy") in text
    assert ("allowedCIDRs <[]string> The egress ceiling: every CIDR in a Sandbox's "
            "spec.egress.allow must lie inside one of these, or the Sandbox is not started "
            "(reason PolicyViolation). Unset means no ceiling; an empty list allows no "
            "destination (DNS only).") in text
    assert "deniedCIDRs <[]string> Ranges no sandbox of this class may reach, e.g. 169.254.0.0/16" in text

    kind = explain(kubectl, "sbxc")
    assert 'sandboxclass.kage.dev/is-default-class: "true" applies to Sandboxes that name no class' in kind

    tolerations = explain(kubectl, "sandboxclass.spec.tolerations")
    assert "operator <string> enum: Exists, Equal How key and value match a taint" in tolerations
    assert "effect <string> enum: NoSchedule, PreferNoSchedule, NoExecute" in tolerations


def test_kubectl_get_by_short_name_shows_the_columns(kubectl, crd):
    kubectl.apply(sandbox_class("shown", runtimeClassName="kata-fc", maxLifetimeSeconds=3600,
                                maxResources={"cpu": 4, "memory": "8Gi"}))
    kubectl.apply(sandbox_class("plain"))
    out = kubectl.run("get", "sbxc", "-l", f"{RUN_LABEL}={RUN}").stdout.splitlines()
    header = out[0]
    assert header.split() == ["NAME", "RUNTIME", "MAXCPU", "MAXMEMORY", "MAXLIFETIME", "AGE"]
    rows = {line.split()[0]: line for line in out[1:]}
    shown = rows[name_of("shown")]
    assert shown.split()[:5] == [name_of("shown"), "kata-fc", "4", "8Gi", "3600"]
    # Columns line up under the header; a class without spec shows blanks.
    assert shown.index("kata-fc") == header.index("RUNTIME")
    assert shown.index("8Gi") == header.index("MAXMEMORY")
    assert len(rows[name_of("plain")].split()) == 2  # name and age

    # The kage category lists classes too (cluster-scoped, next to sandboxes).
    names = kubectl.run("get", "kage", "-o", "name").stdout.split()
    assert f"sandboxclass.kage.dev/{name_of('shown')}" in names


def test_class_is_cluster_scoped(kubectl, crd, make_namespace):
    ns = make_namespace("sbxc")
    kubectl.apply(sandbox_class("scoped"))
    # Listed the same from any namespace, and never namespaced.
    listed = kubectl.run("-n", ns, "get", "sbxc", name_of("scoped"), "-o", "name").stdout.strip()
    assert listed == f"sandboxclass.kage.dev/{name_of('scoped')}"
    assert "namespace" not in get_class(kubectl, "scoped")["metadata"]
