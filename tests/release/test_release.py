# SPDX-License-Identifier: Apache-2.0
"""A release as its users meet it (tests/release/run.sh makes one first):
install.yaml is the kustomize sources, whole and in apply order, and
installs kage into a cluster; each OCI archive (linux/amd64, linux/arm64)
names its image for containerd, imports for its platform, its blobs are
what their digests say and its binary prints the release's version (arm64
under qemu-aarch64); each SBOM names every Debian package its image's files
come from and the statically linked libraries with their Debian versions;
SHA256SUMS verify."""

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DIST = Path(os.environ["KAGE_DIST"])
VERSION = os.environ["VERSION"]
IMAGE = f"{os.environ['IMAGE_REPO']}:{VERSION}"
SOURCE = os.environ["SOURCE"]
STATE = Path(os.environ["KAGE_CLUSTER_DIR"])
OCI = DIST / f"kage-controller-{VERSION}-linux-amd64.oci.tar"
SBOM = DIST / f"kage-controller-{VERSION}.spdx.json"
# Per architecture: the OCI archive, the SBOM and the build stage's image in
# podman's storage (scripts/release.sh tags arm64 as IMAGE-arm64).
ARCHES = {
    "amd64": (OCI, SBOM, f"{IMAGE}-build"),
    "arm64": (DIST / f"kage-controller-{VERSION}-linux-arm64.oci.tar",
              DIST / f"kage-controller-{VERSION}-linux-arm64.spdx.json", f"{IMAGE}-arm64-build"),
}
SUDO = [] if os.geteuid() == 0 else ["sudo"]
PODMAN = [*SUDO, "podman"]


def run(*cmd, check=True, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)}: {proc.returncode}: {proc.stderr.strip()}")
    return proc


def cluster_env():
    env = {}
    for line in (STATE / "env").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    return env


def kubectl(*args, check=True):
    return run(str(Path(cluster_env()["BIN_DIR"]) / "kubectl"), "--kubeconfig",
               str(STATE / "kubeconfig"), *args, check=check, timeout=180)


def key(obj):
    md = obj["metadata"]
    return (obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "", obj["kind"],
            md.get("namespace", ""), md["name"])


@pytest.fixture(scope="module")
def installed():
    return list(yaml.safe_load_all((DIST / "install.yaml").read_text()))


@pytest.fixture(scope="module")
def sources():
    objs = []
    for d in ("manifests", "manifests/classes"):
        out = kubectl("kustomize", str(REPO / d)).stdout
        objs += [o for o in yaml.safe_load_all(out) if o]
    return objs


@pytest.fixture(scope="module", params=sorted(ARCHES))
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def layout(tmp_path_factory, arch):
    """The OCI archive of arch unpacked: its directory and its index."""
    d = tmp_path_factory.mktemp(f"oci-{arch}")
    with tarfile.open(ARCHES[arch][0]) as t:
        names = t.getnames()
        assert all(not n.startswith("/") and ".." not in n.split("/") for n in names)
        t.extractall(d)
    return d, json.loads((d / "index.json").read_text())


def blob(layout_dir, digest):
    algo, hexd = digest.split(":")
    data = (layout_dir / "blobs" / algo / hexd).read_bytes()
    assert hashlib.new(algo, data).hexdigest() == hexd, f"blob {digest} does not match its digest"
    return data


def image_files(layout):
    """Every regular file and symlink of the image, from its layers."""
    d, index = layout
    manifest = json.loads(blob(d, index["manifests"][0]["digest"]))
    files = set()
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(d, layer["digest"]))) as t:
            for m in t.getmembers():
                name = "/" + m.name.lstrip("./")
                assert ".wh." not in name, f"whiteout {name} in a layer"
                if not m.isdir():
                    files.add(name)
    return files


@pytest.fixture(scope="module")
def build_root(arch):
    """The build stage's root of arch (podman image mount), where the dpkg
    database is."""
    stage = ARCHES[arch][2]
    root = run(*PODMAN, "image", "mount", stage).stdout.strip()
    yield Path(root)
    run(*PODMAN, "image", "unmount", stage, check=False)


# --- install.yaml -------------------------------------------------------------

def test_install_yaml_holds_every_object_of_the_sources_once_and_nothing_else(installed,
                                                                              sources):
    assert all(isinstance(o, dict) for o in installed)
    keys = [key(o) for o in installed]
    assert len(keys) == len(set(keys)), "an object appears twice"
    assert sorted(keys) == sorted(key(o) for o in sources)
    assert ("kage.dev", "SandboxClass", "", "untrusted") in keys
    # The same objects, but for the image the Deployment runs.
    by_key = {key(o): o for o in installed}
    for src in sources:
        got = json.loads(json.dumps(by_key[key(src)]))
        if src["kind"] == "Deployment":
            c = got["spec"]["template"]["spec"]["containers"][0]
            assert c["image"] == IMAGE
            c["image"] = src["spec"]["template"]["spec"]["containers"][0]["image"]
        assert got == src, f"{key(src)} differs from its source"


def test_namespaces_and_crds_come_first_and_custom_resources_last(installed):
    kinds = [o["kind"] for o in installed]
    assert kinds[0] == "Namespace"
    assert kinds[1:3] == ["CustomResourceDefinition"] * 2
    assert "Namespace" not in kinds[1:] and "CustomResourceDefinition" not in kinds[3:]
    assert kinds[-1] == "SandboxClass" and kinds.count("SandboxClass") == 1


def test_the_deployment_runs_the_released_image_from_the_node(installed):
    (dep,) = [o for o in installed if o["kind"] == "Deployment"]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert (c["image"], c["imagePullPolicy"]) == (IMAGE, "IfNotPresent")


def test_install_yaml_installs_kage_as_the_docs_say(installed):
    """kubectl apply -f twice around the CRDs becoming established, as
    docs/quickstart-k3s.md has it; then the controller rolls out."""
    path = str(DIST / "install.yaml")
    first = kubectl("apply", "-f", path, check=False)
    assert first.returncode == 1
    errors = [line for line in first.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and 'name: "untrusted"' in errors[0] and \
        'no matches for kind "SandboxClass"' in errors[0], first.stderr
    assert len(first.stdout.splitlines()) == len(installed) - 1, first.stdout
    kubectl("wait", "--for=condition=Established", "--timeout=60s",
            "crd/sandboxes.kage.dev", "crd/sandboxclasses.kage.dev")
    second = kubectl("apply", "-f", path)
    assert "sandboxclass.kage.dev/untrusted created" in second.stdout, second.stdout
    # Installed as written: the server holds nothing that differs.
    diff = kubectl("diff", "-f", path, check=False)
    assert (diff.returncode, diff.stdout) == (0, ""), diff.stdout[-3000:]

    dep = json.loads(kubectl("-n", "kage-system", "get", "deployment", "kage-controller",
                             "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    # kwok plays the kubelet: the replicas run without a container; what
    # this shows is that Pod Security "restricted" admitted them.
    kubectl("-n", "kage-system", "rollout", "status", "deployment/kage-controller",
            "--timeout=120s")
    cls = json.loads(kubectl("get", "sandboxclass", "untrusted", "-o", "json").stdout)
    assert cls["metadata"]["annotations"]["sandboxclass.kage.dev/is-default-class"] == "true"


def test_the_examples_apply_to_the_installed_kage(installed):
    """manifests/examples as docs/platform.md uses them: a tenant namespace,
    a class granted to it, a tenant bound to the Sandbox role, a quota, and
    Sandboxes the tenant creates there."""
    ex = REPO / "manifests" / "examples"
    for name in ("tenant-namespace", "sandboxclass-large", "tenant-rolebinding"):
        kubectl("apply", "-f", str(ex / f"{name}.yaml"))
    kubectl("apply", "--dry-run=server", "-f", str(ex / "resourcequota.yaml"))
    tenant = ("--as=alice", "--as-group=team-a")
    can = [kubectl("auth", "can-i", verb, what, "-n", "team-a", *tenant, check=False).stdout.strip()
           for verb, what in (("create", "sandboxes.kage.dev"), ("create", "pods"),
                              ("create", "networkpolicies"), ("get", "secrets"))]
    assert can == ["yes", "no", "no", "no"]
    for name in ("sandbox", "sandbox-gitops"):
        out = kubectl("-n", "team-a", "apply", *tenant, "-f", str(ex / f"{name}.yaml")).stdout
        assert out.endswith(" created\n"), out
    # The class is for team-a's label only: another team's tenant is refused
    # at admission.
    kubectl("create", "namespace", "team-b")
    kubectl("-n", "team-b", "create", "rolebinding", "bob", "--clusterrole=kage-sandbox-editor",
            "--user=bob")
    big = {"apiVersion": "kage.dev/v1alpha1", "kind": "Sandbox",
           "metadata": {"name": "big", "namespace": "team-b"},
           "spec": {"image": "python:3.12-slim", "sandboxClassName": "large"}}
    proc = run(str(Path(cluster_env()["BIN_DIR"]) / "kubectl"), "--kubeconfig",
               str(STATE / "kubeconfig"), "create", "--as=bob", "-f", "-",
               input=json.dumps(big), check=False, timeout=60)
    assert proc.returncode == 1 and "ValidatingAdmissionPolicy 'kage-sandbox-classes'" in \
        proc.stderr and "SandboxClass large may not be used in namespace team-b" in proc.stderr, \
        proc.stderr


# --- the OCI archive ------------------------------------------------------------

def test_the_oci_archive_names_the_image_for_containerd(layout):
    d, index = layout
    assert json.loads((d / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    (m,) = index["manifests"]
    assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # ctr images import takes io.containerd.image.name as it is (a bare tag
    # in ref.name it would prefix with "import-<date>"); podman load reads
    # ref.name.
    assert m["annotations"] == {"io.containerd.image.name": IMAGE,
                                "org.opencontainers.image.ref.name": IMAGE}


def test_the_oci_archive_holds_the_image_with_its_labels(layout, arch):
    d, index = layout
    manifest = json.loads(blob(d, index["manifests"][0]["digest"]))
    config = json.loads(blob(d, manifest["config"]["digest"]))
    assert (config["os"], config["architecture"]) == ("linux", arch)
    assert config["config"]["Entrypoint"] == ["/kage-controller"]
    assert config["config"]["User"] == "65532:65532"
    labels = config["config"]["Labels"]
    revision = run("git", "-C", str(REPO), "rev-parse", "HEAD").stdout.strip()
    if run("git", "-C", str(REPO), "diff", "--quiet", "HEAD", check=False).returncode:
        revision += "-dirty"
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.source"] == SOURCE
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    for layer in manifest["layers"]:
        blob(d, layer["digest"])


@pytest.fixture
def containerd(tmp_path):
    """A containerd of its own (no CRI, sockets and state under tmp_path):
    the ctr command line K3s wraps as `k3s ctr`."""
    cfg = tmp_path / "config.toml"
    sock = tmp_path / "containerd.sock"
    cfg.write_text(f"""version = 2
root = "{tmp_path}/root"
state = "{tmp_path}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
""")
    log = open(tmp_path / "containerd.log", "w")
    proc = subprocess.Popen([*SUDO, "containerd", "--config", str(cfg)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "containerd.log").read_text()[-2000:]
            time.sleep(0.1)
        yield lambda *args: run(*SUDO, "ctr", "--address", str(sock), "-n", "k8s.io", *args, timeout=120)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_ctr_images_import_loads_the_archive_under_the_image_name(containerd, layout, arch):
    # --platform as on a node of that architecture (ctr imports only the
    # host's platform unless told otherwise).
    out = containerd("images", "import", f"--platform=linux/{arch}", str(ARCHES[arch][0])).stdout
    digest = layout[1]["manifests"][0]["digest"]
    assert out.strip() == f"unpacking {IMAGE} ({digest})...done", out
    assert containerd("images", "ls", "-q").stdout.split() == [IMAGE]
    # The content store holds the config the archive's manifest names, for arch.
    (line,) = [ln for ln in containerd("images", "ls").stdout.splitlines()[1:]]
    assert line.split()[-2] == f"linux/{arch}", line


def test_the_binaries_of_each_image_run_from_its_files(layout, arch, tmp_path):
    # The image's files alone (its loader and libraries, -L for qemu):
    # arm64 runs under qemu-user, so a missing library or an amd64 file
    # among them fails here. The controller prints the release's version;
    # the static policy gate finds a port nothing listens on blocked.
    d, index = layout
    manifest = json.loads(blob(d, index["manifests"][0]["digest"]))
    root = tmp_path / "root"
    root.mkdir()
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(d, layer["digest"]))) as t:
            t.extractall(root)
    revision = run("git", "-C", str(REPO), "rev-parse", "HEAD").stdout.strip()
    if run("git", "-C", str(REPO), "diff", "--quiet", "HEAD", check=False).returncode:
        revision += "-dirty"
    for name in ("kage-controller", "kage-gate"):
        elf = (root / name).read_bytes()[:20]
        assert int.from_bytes(elf[18:20], "little") == {"amd64": 62, "arm64": 183}[arch], name
    if arch == "amd64":
        def exe(*args):
            return run(*SUDO, "chroot", str(root), *args, check=False, timeout=60)
    else:
        def exe(path, *args):
            return run("qemu-aarch64", "-L", str(root), str(root) + path, *args, check=False,
                       timeout=60)
    out = exe("/kage-controller", "--version")
    assert (out.returncode, out.stdout.strip()) == \
        (0, f"kage-controller {VERSION} (revision {revision})"), out
    gate = exe("/kage-gate", "127.0.0.1:1")
    assert gate.returncode == 0 and re.fullmatch(
        r"kage-gate: egress blocked after [0-9]+ ms \(2 connects\)",
        (gate.stdout + gate.stderr).strip()), gate


# --- the SBOM -------------------------------------------------------------------

def packages_by_name(sbom):
    return {p["name"]: p for p in sbom["packages"]}


def test_the_sbom_is_spdx_2_3_describing_the_image(layout, arch):
    sbom = json.loads(ARCHES[arch][1].read_text())
    assert (sbom["spdxVersion"], sbom["dataLicense"], sbom["SPDXID"]) == \
        ("SPDX-2.3", "CC0-1.0", "SPDXRef-DOCUMENT")
    ids = [p["SPDXID"] for p in sbom["packages"]]
    assert len(ids) == len(set(ids))
    (described,) = [r["relatedSpdxElement"] for r in sbom["relationships"]
                    if r["relationshipType"] == "DESCRIBES"]
    root = next(p for p in sbom["packages"] if p["SPDXID"] == described)
    digest = layout[1]["manifests"][0]["digest"]
    assert (root["name"], root["versionInfo"], root["licenseDeclared"]) == \
        ("kage-controller", VERSION, "Apache-2.0")
    assert root["checksums"] == [{"algorithm": "SHA256", "checksumValue": digest.split(":")[1]}]
    for r in sbom["relationships"]:
        assert r["spdxElementId"] in ids + ["SPDXRef-DOCUMENT"] and r["relatedSpdxElement"] in ids


def test_the_sbom_names_the_static_libraries_with_their_debian_versions(build_root, arch):
    # What scripts/libs.sh built from, e.g. "curl 7.88.1 from curl_7.88.1-10+deb12u15".
    built = {}
    for line in (build_root / "opt/kage-libs/VERSIONS").read_text().splitlines():
        lib, _, _, dsc = line.split()
        built[lib] = dsc.split("_", 1)[1]
    assert set(built) == {"curl", "libmicrohttpd"}
    pkgs = packages_by_name(json.loads(ARCHES[arch][1].read_text()))
    for lib, version in built.items():
        p = pkgs[lib]
        assert p["versionInfo"] == version
        ref = p["externalRefs"][0]["referenceLocator"]
        assert ref == f"pkg:deb/debian/{lib}@{version.replace('+', '%2B')}" \
            "?arch=source&distro=debian-12"


def test_the_sbom_names_every_package_dpkg_says_the_image_holds(layout, build_root, arch):
    files = image_files(layout)
    assert "/kage-controller" in files
    admin = str(build_root / "var/lib/dpkg")
    owners = {}
    for f in sorted(files - {"/kage-controller", "/kage-gate", "/etc/ssl/certs/ca-certificates.crt"}):
        # bookworm's packages name their files under /lib or /usr/lib.
        for cand in (f, "/usr" + f):
            proc = run("dpkg-query", f"--admindir={admin}", "-S", cand, check=False)
            if proc.returncode == 0:
                # "libc6:arm64: /lib/..." (multiarch) or "pkg: /..."
                name, _, pkg_arch = proc.stdout.split(": ")[0].partition(":")
                assert pkg_arch in ("", arch), f"{f} comes from {name}:{pkg_arch}"
                owners[f] = name
                break
        assert f in owners, f"no package of the build stage owns {f}"
    want = set(owners.values()) | {"ca-certificates"}
    pkgs = packages_by_name(json.loads(ARCHES[arch][1].read_text()))
    debs = {n for n, p in pkgs.items() if p["SPDXID"].startswith("SPDXRef-Package-deb-")}
    assert debs == want
    for name in want:
        # The arm64 stage has libc6 for both architectures: ask for arch's.
        qualified = name if name == "ca-certificates" else f"{name}:{arch}"
        version = run("dpkg-query", f"--admindir={admin}", "-W", "-f=${Version}",
                      qualified).stdout
        assert pkgs[name]["versionInfo"] == version, name
        purl_arch = "all" if name == "ca-certificates" else arch
        assert pkgs[name]["externalRefs"][0]["referenceLocator"].startswith(
            f"pkg:deb/debian/{name}@{version.replace('+', '%2B').replace(':', '%3A')}"
            f"?arch={purl_arch}&")
    assert {"libc6", "libssl3", "libuv1", "libjansson4", "libyaml-0-2", "libnghttp2-14",
            "zlib1g"} <= want


# --- checksums ------------------------------------------------------------------

def test_sha256sums_verify():
    artefacts = ["install.yaml"] + [a.name for oci, sbom, _ in ARCHES.values() for a in (oci, sbom)]
    sums = (DIST / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == sorted(artefacts)
    run("sha256sum", "--strict", "-c", "SHA256SUMS", cwd=DIST)
    assert sorted(p.name for p in DIST.iterdir()) == sorted(artefacts + ["SHA256SUMS"])
