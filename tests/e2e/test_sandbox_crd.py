# SPDX-License-Identifier: Apache-2.0
"""The Sandbox CustomResourceDefinition on a real API server: what it
refuses at admission (and with which field path and message), what it
accepts and defaults, how kubectl explains and lists it, and that status
belongs to the status subresource. No controller runs here."""

import copy
import json
import uuid

import pytest

from conftest import REPO, wait_for

CRD = REPO / "crds" / "sandboxes.kage.dev.yaml"
EXAMPLE = REPO / "manifests" / "examples" / "sandbox.yaml"
API_VERSION = "kage.dev/v1alpha1"
# Printed by the API server after blocking errors (wrong type, missing or
# unsupported value, too many items): CEL rules are then skipped.
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the "
    "object was invalid; correct the existing errors to complete validation"
)


@pytest.fixture(scope="module")
def crd(kubectl, without_controller):
    kubectl.run("apply", "-f", str(CRD))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/sandboxes.kage.dev")
    # kubectl's discovery cache learns about the new resource on first use.
    wait_for(lambda: kubectl.run("get", "sandboxes", "-A", check=False).returncode == 0,
             timeout=30, what="sandboxes to be served")
    return kubectl.json("get", "crd", "sandboxes.kage.dev")


@pytest.fixture(scope="module")
def ns(kubectl, crd):
    """One namespace for the module: refused objects leave nothing behind."""
    name = f"crd-{uuid.uuid4().hex[:8]}"
    kubectl.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def sandbox(name="bad", **spec):
    spec.setdefault("image", "python:3.12-slim")
    return {"apiVersion": API_VERSION, "kind": "Sandbox", "metadata": {"name": name}, "spec": spec}


def without(manifest, *path):
    """A copy of manifest with the field at path removed."""
    out = copy.deepcopy(manifest)
    node = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def field_errors(stderr, name):
    """The field errors of a 422 Invalid answer, one string each."""
    head = f'The Sandbox "{name}" is invalid: '
    assert head in stderr, stderr
    rest = stderr.split(head, 1)[1]
    if rest.startswith("\n"):
        return [line[2:] for line in rest.splitlines() if line.startswith("* ")]
    return [rest.strip()]


def allow(cidr, **rest):
    return {"egress": {"allow": [{"cidr": cidr, **rest}]}}


NAME_64 = "a" * 64
CIDR_MESSAGE = "must be a valid IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32"
QUANTITY_MESSAGE = "must be a Kubernetes quantity such as 500m, 1, 2Gi or 512Mi"
ROOT_MESSAGE = "must not be 0 (root); sandboxes never run as root"
SUBDOMAIN_MESSAGE = (
    "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
    "starting and ending with a letter or digit"
)

# (id, manifest, the one field error the API server reports, blocking?)
# A blocking error (missing or unsupported value, wrong type, too many items,
# too long a string) makes the server skip the CEL rules and say so in a
# second line.
INVALID = [
    ("missing-spec", without(sandbox(), "spec"), "spec: Required value", True),
    ("missing-image", without(sandbox(), "spec", "image"), "spec.image: Required value", True),
    ("empty-image", sandbox(image=""),
     'spec.image: Invalid value: "": spec.image in body should be at least 1 chars long', False),
    ("image-with-whitespace", sandbox(image="python 3.12"),
     'spec.image: Invalid value: "python 3.12": must not contain whitespace', False),
    ("image-too-long", sandbox(image="r/" + "x" * 1023),
     "spec.image: Too long: may not be more than 1024 bytes", True),
    ("class-name-not-subdomain", sandbox(sandboxClassName="Small_Class"),
     f'spec.sandboxClassName: Invalid value: "Small_Class": {SUBDOMAIN_MESSAGE}', False),
    ("cidr-prefix-too-long", sandbox(**allow("10.0.0.0/33")),
     f'spec.egress.allow[0].cidr: Invalid value: "10.0.0.0/33": {CIDR_MESSAGE}', False),
    ("cidr-not-an-address", sandbox(**allow("example.com/24")),
     f'spec.egress.allow[0].cidr: Invalid value: "example.com/24": {CIDR_MESSAGE}', False),
    ("cidr-without-prefix", sandbox(**allow("203.0.113.7")),
     f'spec.egress.allow[0].cidr: Invalid value: "203.0.113.7": {CIDR_MESSAGE}', False),
    ("cidr-ipv4-mapped", sandbox(**allow("::ffff:169.254.169.254/128")),
     f'spec.egress.allow[0].cidr: Invalid value: "::ffff:169.254.169.254/128": {CIDR_MESSAGE}',
     False),
    ("cidr-ipv6-garbage", sandbox(**allow("2001:db8::zz/64")),
     f'spec.egress.allow[0].cidr: Invalid value: "2001:db8::zz/64": {CIDR_MESSAGE}', False),
    ("cidr-missing", sandbox(egress={"allow": [{"except": ["10.0.0.0/16"]}]}),
     "spec.egress.allow[0].cidr: Required value", True),
    ("except-outside-cidr", sandbox(**allow("10.0.0.0/8", **{"except": ["11.0.0.0/16"]})),
     "spec.egress.allow[0].except: Invalid value: "
     "except entry 11.0.0.0/16 is not strictly inside cidr 10.0.0.0/8", False),
    ("except-equal-to-cidr", sandbox(**allow("10.0.0.0/8", **{"except": ["10.0.0.0/8"]})),
     "spec.egress.allow[0].except: Invalid value: "
     "except entry 10.0.0.0/8 is not strictly inside cidr 10.0.0.0/8", False),
    ("except-ipv6-outside", sandbox(**allow("2001:db8::/32", **{"except": ["2001:db9::/48"]})),
     "spec.egress.allow[0].except: Invalid value: "
     "except entry 2001:db9::/48 is not strictly inside cidr 2001:db8::/32", False),
    ("except-other-family", sandbox(**allow("10.0.0.0/8", **{"except": ["2001:db8::/64"]})),
     "spec.egress.allow[0].except: Invalid value: "
     "except entry 2001:db8::/64 is not of the same IP family as cidr 10.0.0.0/8", False),
    ("except-not-a-cidr", sandbox(**allow("10.0.0.0/8", **{"except": ["10.0.0.0/16", "bad"]})),
     'spec.egress.allow[0].except[1]: Invalid value: "bad": '
     "must be a valid IPv4 or IPv6 CIDR such as 203.0.113.7/32", False),
    ("port-0", sandbox(**allow("10.0.0.0/8", ports=[{"port": 0}])),
     "spec.egress.allow[0].ports[0].port: Invalid value: 0: "
     "spec.egress.allow[0].ports[0].port in body should be greater than or equal to 1", False),
    ("port-70000", sandbox(**allow("10.0.0.0/8", ports=[{"port": 70000}])),
     "spec.egress.allow[0].ports[0].port: Invalid value: 70000: "
     "spec.egress.allow[0].ports[0].port in body should be less than or equal to 65535", False),
    ("port-missing", sandbox(**allow("10.0.0.0/8", ports=[{"protocol": "UDP"}])),
     "spec.egress.allow[0].ports[0].port: Required value", True),
    ("end-port-below-port", sandbox(**allow("10.0.0.0/8", ports=[{"port": 8100, "endPort": 8000}])),
     "spec.egress.allow[0].ports[0].endPort: Invalid value: "
     "must be greater than or equal to port", False),
    ("end-port-70000", sandbox(**allow("10.0.0.0/8", ports=[{"port": 8000, "endPort": 70000}])),
     "spec.egress.allow[0].ports[0].endPort: Invalid value: 70000: "
     "spec.egress.allow[0].ports[0].endPort in body should be less than or equal to 65535", False),
    ("protocol-icmp", sandbox(**allow("10.0.0.0/8", ports=[{"port": 1, "protocol": "ICMP"}])),
     'spec.egress.allow[0].ports[0].protocol: Unsupported value: "ICMP": '
     'supported values: "TCP", "UDP", "SCTP"', True),
    ("too-many-allow-entries",
     sandbox(egress={"allow": [{"cidr": f"10.0.{i}.0/24"} for i in range(65)]}),
     "spec.egress.allow: Too many: 65: must have at most 64 items", True),
    ("dns-not-boolean", sandbox(egress={"dns": "yes"}),
     'spec.egress.dns: Invalid value: "string": spec.egress.dns in body must be of type boolean: "string"',
     True),
    ("run-as-root", sandbox(securityContext={"runAsUser": 0}),
     f"spec.securityContext.runAsUser: Invalid value: 0: {ROOT_MESSAGE}", False),
    ("run-as-group-root", sandbox(securityContext={"runAsGroup": 0}),
     f"spec.securityContext.runAsGroup: Invalid value: 0: {ROOT_MESSAGE}", False),
    ("run-as-negative-user", sandbox(securityContext={"runAsUser": -1}),
     "spec.securityContext.runAsUser: Invalid value: -1: "
     "spec.securityContext.runAsUser in body should be greater than or equal to 0", False),
    ("run-as-user-above-int32", sandbox(securityContext={"runAsUser": 2147483648}),
     "spec.securityContext.runAsUser: Invalid value: 2147483648: "
     "spec.securityContext.runAsUser in body should be less than or equal to 2147483647", False),
    ("name-64-characters", sandbox(NAME_64),
     "metadata.name: Invalid value: metadata.name must be at most 63 characters "
     "(it becomes a pod name and a label value)", False),
    ("name-with-dot", sandbox("a.b"),
     "metadata.name: Invalid value: metadata.name must be a DNS-1123 label: "
     "it may not contain '.' (it becomes the sandbox's hostname)", False),
    ("memory-negative", sandbox(resources={"memory": "-1Gi"}),
     'spec.resources.memory: Invalid value: "-1Gi": must be greater than zero', False),
    ("cpu-zero", sandbox(resources={"cpu": 0}),
     "spec.resources.cpu: Invalid value: 0: must be greater than zero", False),
    ("cpu-zero-millicores", sandbox(resources={"cpu": "0m"}),
     'spec.resources.cpu: Invalid value: "0m": must be greater than zero', False),
    # What admission accepts, the controller accepts: it refuses a fraction
    # of a byte, so admission does too.
    ("memory-half-a-byte", sandbox(resources={"memory": "500m"}),
     'spec.resources.memory: Invalid value: "500m": must be at least 1 byte, such as 512Mi '
     "(500m is half a byte)", False),
    ("ephemeral-storage-below-a-byte", sandbox(resources={"ephemeralStorage": "999m"}),
     'spec.resources.ephemeralStorage: Invalid value: "999m": must be at least 1 byte, such as '
     "512Mi (500m is half a byte)", False),
    ("memory-not-a-quantity", sandbox(resources={"memory": "lots"}),
     f'spec.resources.memory: Invalid value: "lots": {QUANTITY_MESSAGE}', False),
    ("ephemeral-storage-bad-suffix", sandbox(resources={"ephemeralStorage": "2GB"}),
     f'spec.resources.ephemeralStorage: Invalid value: "2GB": {QUANTITY_MESSAGE}', False),
    ("cpu-too-long", sandbox(resources={"cpu": "1" * 65}),
     "spec.resources.cpu: Too long: may not be more than 64 bytes", True),
    ("env-name-starts-with-digit", sandbox(env=[{"name": "1BAD", "value": "x"}]),
     'spec.env[0].name: Invalid value: "1BAD": '
     "must be a C identifier: letters, digits and '_', not starting with a digit", False),
    ("env-value-and-value-from",
     sandbox(env=[{"name": "TOKEN", "value": "x",
                   "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}]),
     "spec.env[0].valueFrom: Forbidden: may not be specified when value is set", False),
    ("env-duplicate-name",
     sandbox(env=[{"name": "FOO", "value": "1"}, {"name": "FOO", "value": "2"}]),
     'spec.env[1]: Duplicate value: {"name":"FOO"}', False),
    ("env-value-from-empty", sandbox(env=[{"name": "TOKEN", "valueFrom": {}}]),
     "spec.env[0].valueFrom: Invalid value: "
     "exactly one of secretKeyRef and configMapKeyRef must be set", False),
    ("env-value-from-both",
     sandbox(env=[{"name": "TOKEN", "valueFrom": {
         "secretKeyRef": {"name": "creds", "key": "token"},
         "configMapKeyRef": {"name": "settings", "key": "token"}}}]),
     "spec.env[0].valueFrom: Invalid value: "
     "exactly one of secretKeyRef and configMapKeyRef must be set", False),
    ("env-secret-name-upper-case",
     sandbox(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "Creds", "key": "token"}}}]),
     f'spec.env[0].valueFrom.secretKeyRef.name: Invalid value: "Creds": {SUBDOMAIN_MESSAGE}', False),
    ("env-config-map-key-with-slash",
     sandbox(env=[{"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a/b"}}}]),
     'spec.env[0].valueFrom.configMapKeyRef.key: Invalid value: "a/b": '
     "must consist of letters, digits, '-', '_' and '.' (and not be '.' or start with '..')", False),
    ("env-secret-key-missing",
     sandbox(env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds"}}}]),
     "spec.env[0].valueFrom.secretKeyRef.key: Required value", True),
    ("working-dir-relative", sandbox(workingDir="home/sandbox"),
     'spec.workingDir: Invalid value: "home/sandbox": must be an absolute path (start with /)', False),
    ("ttl-seconds-0", sandbox(lifetime={"ttlSeconds": 0}),
     "spec.lifetime.ttlSeconds: Invalid value: 0: "
     "spec.lifetime.ttlSeconds in body should be greater than or equal to 1", False),
    ("ttl-seconds-over-a-year", sandbox(lifetime={"ttlSeconds": 31536001}),
     "spec.lifetime.ttlSeconds: Invalid value: 31536001: "
     "spec.lifetime.ttlSeconds in body should be less than or equal to 31536000", False),
    ("shutdown-policy-keep", sandbox(lifetime={"ttlSeconds": 60, "shutdownPolicy": "Keep"}),
     'spec.lifetime.shutdownPolicy: Unsupported value: "Keep": supported values: "Delete", "Retain"',
     True),
    ("too-many-args", sandbox(args=["x"] * 65),
     "spec.args: Too many: 65: must have at most 64 items", True),
    ("before-script-too-long", sandbox(beforeScript="x" * 16385),
     "spec.beforeScript: Too long: may not be more than 16384 bytes", True),
]


@pytest.mark.parametrize(
    "manifest,error,blocking",
    [pytest.param(m, e, b, id=i) for i, m, e, b in INVALID],
)
def test_invalid_sandbox_is_refused_naming_the_field(kubectl, ns, manifest, error, blocking):
    name = manifest["metadata"]["name"]
    proc = kubectl.apply(manifest, "-n", ns, check=False)
    assert proc.returncode == 1, proc.stdout
    assert error in proc.stderr
    # The case triggers this error and nothing else.
    assert field_errors(proc.stderr, name) == ([error, NOT_CHECKED] if blocking else [error])
    gone = kubectl.run("-n", ns, "get", "sandbox", name, check=False)
    assert gone.returncode == 1
    assert f'sandboxes.kage.dev "{name}" not found' in gone.stderr


def test_unknown_field_is_refused_by_strict_field_validation(kubectl, ns):
    manifest = sandbox("unknown-field", hostNetwork=True)
    proc = kubectl.apply(manifest, "-n", ns, "--validate=strict", check=False)
    assert proc.returncode == 1
    assert (
        'Sandbox in version "v1alpha1" cannot be handled as a Sandbox: '
        'strict decoding error: unknown field "spec.hostNetwork"'
    ) in proc.stderr
    gone = kubectl.run("-n", ns, "get", "sandbox", "unknown-field", check=False)
    assert gone.returncode == 1


def test_float_quantity_is_refused(kubectl, ns):
    """A bare YAML float is neither an integer nor a string: quote it."""
    proc = kubectl.apply(sandbox("float-cpu", resources={"cpu": 0.5}), "-n", ns, check=False)
    assert proc.returncode == 1
    errors = field_errors(proc.stderr, "float-cpu")
    assert ('spec.resources.cpu: Invalid value: "number": '
            'spec.resources.cpu in body must be of type integer,string: "number"') in errors


def get_spec(kubectl, ns, name):
    return kubectl.json("-n", ns, "get", "sandbox", name)["spec"]


def test_minimal_sandbox_is_accepted_with_defaults(kubectl, ns):
    kubectl.apply({"apiVersion": API_VERSION, "kind": "Sandbox",
                   "metadata": {"name": "minimal"}, "spec": {"image": "python:3.12-slim"}},
                  "-n", ns)
    assert get_spec(kubectl, ns, "minimal") == {"image": "python:3.12-slim", "paused": False}


FULL_SPEC = {
    "sandboxClassName": "small",
    "image": "registry.example.com/team/agent@sha256:" + "0" * 64,
    "command": ["python3", "-m", "http.server"],
    "args": ["8000", "--bind", "::"],
    "workingDir": "/home/sandbox",
    "env": [
        {"name": "FOO", "value": "bar"},
        {"name": "EMPTY", "value": ""},
        {"name": "UNSET"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app.settings", "key": "log.level"}}},
    ],
    "resources": {"cpu": 1, "memory": "1Gi", "ephemeralStorage": "2Gi"},
    "egress": {
        "dns": False,
        "allow": [
            {"cidr": "203.0.113.0/24", "except": ["203.0.113.7/32", "203.0.113.128/25"],
             "ports": [{"port": 443, "protocol": "TCP"}, {"port": 8000, "endPort": 8100},
                       {"port": 53, "protocol": "UDP"}, {"port": 9999, "protocol": "SCTP"}]},
            {"cidr": "2001:db8::/32", "except": ["2001:db8:dead::/48"],
             "ports": [{"port": 443, "endPort": 443}]},
            {"cidr": "198.51.100.10/32"},
        ],
    },
    "beforeScript": "pip install requests\necho ready > /tmp/ready\n",
    "lifetime": {"ttlSeconds": 3600, "shutdownPolicy": "Retain"},
    "paused": True,
    "securityContext": {"runAsUser": 1000, "runAsGroup": 2147483647},
}


def test_full_sandbox_is_accepted_as_written(kubectl, ns):
    kubectl.apply(sandbox("full", **FULL_SPEC), "-n", ns)
    expected = copy.deepcopy(FULL_SPEC)
    # The only default not written out: the protocol of a port.
    for entry in expected["egress"]["allow"]:
        for port in entry.get("ports", []):
            port.setdefault("protocol", "TCP")
    assert get_spec(kubectl, ns, "full") == expected


def test_api_server_applies_defaults(kubectl, ns):
    kubectl.apply(sandbox("defaults",
                          egress={"allow": [{"cidr": "203.0.113.0/24", "ports": [{"port": 443}]}]},
                          lifetime={"ttlSeconds": 60}),
                  "-n", ns)
    assert get_spec(kubectl, ns, "defaults") == {
        "image": "python:3.12-slim",
        "egress": {
            "dns": True,
            "allow": [{"cidr": "203.0.113.0/24", "ports": [{"port": 443, "protocol": "TCP"}]}],
        },
        "lifetime": {"ttlSeconds": 60, "shutdownPolicy": "Delete"},
        "paused": False,
    }


@pytest.mark.parametrize("spec", [
    pytest.param(allow("203.0.113.5/24", **{"except": ["203.0.113.7/32"]}), id="cidr-with-host-bits"),
    pytest.param(allow("0.0.0.0/0", **{"except": ["10.0.0.0/8", "169.254.0.0/16"]}), id="ipv4-everything"),
    pytest.param(allow("::/0", **{"except": ["fd00::/8"]}), id="ipv6-everything"),
    pytest.param(allow("2001:DB8::1/128"), id="ipv6-upper-case-host"),
    pytest.param(allow("10.0.0.0/8", ports=[{"port": 1, "endPort": 65535}]), id="all-ports-range"),
    pytest.param({"egress": {}}, id="egress-empty"),
    pytest.param({"resources": {"cpu": "100m", "memory": "1e9", "ephemeralStorage": 1073741824}},
                 id="quantity-forms"),
    pytest.param({"resources": {"cpu": "0.5"}}, id="quantity-fraction-string"),
    pytest.param({"securityContext": {"runAsUser": 1, "runAsGroup": 1}}, id="uid-1"),
    pytest.param({"lifetime": {"ttlSeconds": 31536000}}, id="ttl-one-year"),
    pytest.param({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": ".dotfile"}}}]},
                 id="secret-key-dotfile"),
])
def test_edge_values_are_accepted(kubectl, ns, spec):
    name = f"edge-{uuid.uuid4().hex[:8]}"
    proc = kubectl.apply(sandbox(name, **spec), "-n", ns, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sandbox.kage.dev/{name} created"


def test_largest_sandbox_stays_within_the_cel_cost_budget(kubectl, ns):
    """Every list at its maximum, every CEL rule evaluated: still admitted
    (the API server refuses a request whose rules cost too much)."""
    allow = []
    for i in range(64):
        if i % 2:
            allow.append({"cidr": f"2001:db8:{i:x}::/48",
                          "except": [f"2001:db8:{i:x}:{j:x}::/64" for j in range(32)],
                          "ports": [{"port": p + 1, "endPort": p + 2, "protocol": "UDP"}
                                    for p in range(32)]})
        else:
            allow.append({"cidr": f"10.{i}.0.0/16",
                          "except": [f"10.{i}.{j}.0/24" for j in range(32)],
                          "ports": [{"port": p + 1} for p in range(32)]})
    env = [{"name": f"V{i}", "valueFrom": {"secretKeyRef": {"name": "a." * 126 + "b", "key": "k" * 253}}}
           for i in range(128)]
    manifest = sandbox("largest", image="r/" + "x" * 1022, sandboxClassName="c" * 253,
                       workingDir="/" + "w" * 4095, env=env,
                       egress={"allow": allow},
                       resources={"cpu": "1" * 64, "memory": "9" * 63 + "m", "ephemeralStorage": "1" * 64})
    # create, not apply: the last-applied annotation would pass its 256 KiB cap.
    proc = kubectl.create(manifest, "-n", ns, check=False)
    assert proc.returncode == 0, proc.stderr[:2000]
    spec = get_spec(kubectl, ns, "largest")
    assert len(spec["egress"]["allow"]) == 64 and len(spec["env"]) == 128


def test_name_of_63_characters_and_generated_names_are_accepted(kubectl, ns):
    kubectl.apply(sandbox("b" * 63), "-n", ns)
    created = kubectl.create({"apiVersion": API_VERSION, "kind": "Sandbox",
                              "metadata": {"generateName": "g" * 62}, "spec": {"image": "x"}},
                             "-n", ns, "-o", "name")
    generated = created.stdout.strip().split("/", 1)[1]
    assert len(generated) == 63 and generated.startswith("g" * 58)


def test_example_manifest_is_accepted(kubectl, ns):
    proc = kubectl.run("-n", ns, "apply", "--dry-run=server", "-f", str(EXAMPLE))
    assert proc.stdout.strip() == "sandbox.kage.dev/example created (server dry run)"


def test_crd_names_scope_and_columns(crd):
    spec = crd["spec"]
    assert spec["group"] == "kage.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == {
        "kind": "Sandbox", "listKind": "SandboxList", "plural": "sandboxes",
        "singular": "sandbox", "shortNames": ["sbx"], "categories": ["kage"],
    }
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    # The default table, then what -o wide adds (priority 1).
    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
            for c in version["additionalPrinterColumns"]] == [
        ("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', 0),
        ("Phase", "string", ".status.phase", 0),
        ("Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', 0),
        ("IP", "string", ".status.podIP", 0),
        ("Node", "string", ".status.nodeName", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
        ("Class", "string", ".spec.sandboxClassName", 1),
        ("Image", "string", ".spec.image", 1),
        ("Expires", "date", ".status.expiresAt", 1),
        ("Message", "string", '.status.conditions[?(@.type=="Ready")].message', 1),
    ]


def explain(kubectl, field):
    return " ".join(kubectl.run("explain", field).stdout.split())


def test_kubectl_explain_describes_egress(kubectl, crd):
    text = explain(kubectl, "sandbox.spec.egress")
    assert "KIND: Sandbox VERSION: v1alpha1 FIELD: egress <Object>" in text
    assert ("Outbound network access. All traffic into and out of the sandbox is denied by "
            "NetworkPolicies, except DNS (when dns is true) and the destinations listed in allow.") in text
    assert ("dns <boolean> Allow DNS lookups: port 53 over UDP and TCP to kube-dns only. "
            "Defaults to true.") in text
    assert "allow <[]Object> Destinations the sandbox may connect to;" in text

    ports = explain(kubectl, "sbx.spec.egress.allow.ports")
    assert "port <integer> -required- The destination port (1-65535)" in ports
    assert "protocol <string> enum: TCP, UDP, SCTP The transport protocol" in ports

    resources = explain(kubectl, "sandbox.spec.resources")
    assert "requests = limits" in resources


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

    walk(schema, "")
    assert missing == []


def test_kubectl_get_by_short_name_shows_the_columns(kubectl, make_namespace, crd):
    ns = make_namespace("sbx")
    kubectl.apply(sandbox("shown"), "-n", ns)
    lines = kubectl.run("-n", ns, "get", "sbx").stdout.splitlines()
    assert lines[0] == "NAME    READY   PHASE   REASON   IP    NODE   AGE"
    assert len(lines) == 2 and lines[1].split()[0] == "shown"
    assert len(lines[1].split()) == 2  # name and age: no status yet

    # The category lists it too (with any cluster-scoped SandboxClasses,
    # which other suites may have made: only the sandboxes are compared).
    by_category = kubectl.run("-n", ns, "get", "kage", "-o", "name").stdout.split()
    assert [n for n in by_category if n.startswith("sandbox.kage.dev/")] == \
        ["sandbox.kage.dev/shown"]

    # What a controller would write fills the columns, Reason from Ready.
    kubectl.run("-n", ns, "patch", "sandbox", "shown", "--subresource=status", "--type=merge", "-p",
                json.dumps({"status": {
                    "phase": "Running", "podName": "shown", "podIP": "10.244.0.7",
                    "nodeName": "kwok-node-0", "observedGeneration": 1,
                    "conditions": [
                        {"type": "NetworkIsolated", "status": "True", "reason": "PoliciesApplied",
                         "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                        {"type": "Ready", "status": "True", "reason": "SandboxReady",
                         "message": "the sandbox is usable", "lastTransitionTime": "2025-01-01T00:00:00Z",
                         "observedGeneration": 1},
                    ]}}))
    lines = kubectl.run("-n", ns, "get", "sbx").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "PHASE", "REASON", "IP", "NODE", "AGE"]
    assert lines[1].split()[:6] == ["shown", "True", "Running", "SandboxReady", "10.244.0.7",
                                    "kwok-node-0"]


def test_status_given_in_a_create_is_dropped(kubectl, ns):
    manifest = sandbox("with-status")
    manifest["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    kubectl.create(manifest, "-n", ns)
    obj = kubectl.json("-n", ns, "get", "sandbox", "with-status")
    assert "status" not in obj
    assert obj["metadata"]["generation"] == 1


def test_status_is_written_only_through_the_subresource(kubectl, ns):
    kubectl.apply(sandbox("status-owner"), "-n", ns)
    kubectl.run("-n", ns, "patch", "sandbox", "status-owner", "--subresource=status", "--type=merge",
                "-p", '{"status": {"phase": "Creating"}}')
    # A write to the main resource cannot change status...
    kubectl.run("-n", ns, "patch", "sandbox", "status-owner", "--type=merge",
                "-p", '{"status": {"phase": "Failed"}}')
    obj = kubectl.json("-n", ns, "get", "sandbox", "status-owner")
    assert obj["status"] == {"phase": "Creating"}
    # ...and the status subresource cannot change spec.
    kubectl.run("-n", ns, "patch", "sandbox", "status-owner", "--subresource=status", "--type=merge",
                "-p", '{"spec": {"image": "busybox"}}')
    obj = kubectl.json("-n", ns, "get", "sandbox", "status-owner")
    assert obj["spec"]["image"] == "python:3.12-slim"
    assert obj["metadata"]["generation"] == 1


@pytest.mark.parametrize("status,error", [
    pytest.param({"phase": "Bogus"},
                 'status.phase: Unsupported value: "Bogus": supported values: "Pending", "Creating", '
                 '"Running", "Paused", "Succeeded", "Failed", "Expired", "Terminating"', id="phase"),
    pytest.param({"conditions": [{"type": "Ready", "status": "Maybe", "reason": "X", "message": "",
                                  "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
                 'status.conditions[0].status: Unsupported value: "Maybe": '
                 'supported values: "True", "False", "Unknown"', id="condition-status"),
    pytest.param({"conditions": [{"type": "Ready", "status": "True", "message": "",
                                  "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
                 "status.conditions[0].reason: Required value", id="condition-reason"),
    pytest.param({"startTime": "yesterday"},
                 'status.startTime: Invalid value: "yesterday": '
                 'startTime in body must be of type date-time: "yesterday"', id="start-time"),
])
def test_status_subresource_validates_status(kubectl, ns, status, error):
    name = f"st-{uuid.uuid4().hex[:8]}"
    kubectl.apply(sandbox(name), "-n", ns)
    proc = kubectl.run("-n", ns, "patch", "sandbox", name, "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": status}), check=False)
    assert proc.returncode == 1
    assert error in proc.stderr
