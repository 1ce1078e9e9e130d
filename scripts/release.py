#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers of scripts/release.sh, one subcommand each:

  manifest VERSION REVISION < kustomize-output > install.yaml
      orders the rendered objects for one `kubectl apply -f` (and K3s's
      auto-deploy folder): namespaces and CRDs first, custom resources last,
      kustomize's order in between, under a header naming the release.
  name-oci-layout DIR IMAGE
      gives the one image of an OCI layout (an unpacked `podman save
      --format oci-archive`) the names importers read, both the full
      reference: io.containerd.image.name (which containerd's importer
      takes first, as it is) and org.opencontainers.image.ref.name (as
      podman writes it; containerd would prefix a bare tag there with
      "import-<date>").
  sbom PACKAGES.tsv VERSION REVISION SOURCE IMAGE DIGEST CREATED > sbom.spdx.json
      writes an SPDX 2.3 JSON document for the image from the package list
      the Dockerfile's build stage records (/sbom/packages.tsv): every
      Debian package a file of the image comes from, and the source
      packages of the libraries linked statically into the binary.
"""

import json
import sys
import uuid

import yaml

# Objects that others depend on come first; custom resources need their
# CRDs established, so they come last.
FIRST = ["Namespace", "CustomResourceDefinition"]


def manifest(version, revision):
    text = sys.stdin.read()
    docs = [d.strip("\n") for d in text.split("\n---\n") if d.strip() and d.strip() != "---"]
    objs = []
    for i, doc in enumerate(docs):
        obj = yaml.safe_load(doc)
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            sys.exit(f"release: document {i} of the kustomize output is not an object")
        group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
        custom = group.endswith("kage.dev")
        rank = FIRST.index(obj["kind"]) if obj["kind"] in FIRST else (3 if custom else 2)
        objs.append((rank, i, doc))
    objs.sort()
    out = [
        f"# kage {version} (revision {revision}): namespace, CRDs, RBAC, admission",
        "# policies, controller Deployment, Service, PodDisruptionBudget and the",
        "# default SandboxClass, in the order they are applied.",
        "#   kubectl apply -f install.yaml",
        "# The SandboxClass at the end needs its CRD established: on a first",
        "# install kubectl reports it as not found; wait for the CRDs and apply",
        "# again (docs/quickstart-k3s.md).",
    ]
    for _, _, doc in objs:
        out.append("---")
        out.append(doc)
    sys.stdout.write("\n".join(out) + "\n")


def name_oci_layout(layout, image):
    path = f"{layout}/index.json"
    with open(path) as f:
        index = json.load(f)
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        sys.exit(f"release: {path} holds {len(manifests)} images, want 1")
    ann = manifests[0].setdefault("annotations", {})
    ann["io.containerd.image.name"] = image
    ann["org.opencontainers.image.ref.name"] = image
    with open(path, "w") as f:
        json.dump(index, f, separators=(",", ":"), sort_keys=True)


def purl(name, version, arch, distro):
    # Package URLs as scanners match them: pkg:deb/debian/NAME@VERSION.
    v = version.replace("+", "%2B").replace(":", "%3A")
    return f"pkg:deb/debian/{name}@{v}?arch={arch}&distro={distro}"


def spdx_id(kind, name):
    safe = "".join(c if c.isalnum() or c in ".-" else "-" for c in name)
    return f"SPDXRef-{kind}-{safe}"


def sbom(tsv, version, revision, source, image, digest, created):
    distro = None
    binaries = {}  # package -> (version, source, source version, arch, [files])
    static = []  # (library, source package, source version)
    with open(tsv) as f:
        for n, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if cols[0] == "os" and len(cols) == 3:
                distro = f"{cols[1]}-{cols[2]}"
            elif cols[0] == "file" and len(cols) == 7:
                _, path, pkg, ver, src, srcver, arch = cols
                entry = binaries.setdefault(pkg, (ver, src or pkg, srcver or ver, arch, []))
                entry[4].append(path)
            elif cols[0] == "static" and len(cols) == 4:
                static.append((cols[1], cols[2], cols[3]))
            else:
                sys.exit(f"release: {tsv}:{n}: unexpected line {line!r}")
    if not distro or not binaries or not static:
        sys.exit(f"release: {tsv} lacks the os, file or static lines")

    supplier = "Organization: Debian"
    root = "SPDXRef-Package-kage-controller"
    packages = [{
        "name": "kage-controller",
        "SPDXID": root,
        "versionInfo": version,
        "downloadLocation": source or "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "Apache-2.0",
        "licenseDeclared": "Apache-2.0",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "sourceInfo": f"built from revision {revision}",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest.split(":", 1)[1]}],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:oci/kage-controller@" + digest.replace(":", "%3A")
                                + "?repository_url=" + image.rsplit(":", 1)[0],
        }],
    }]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": root}]
    for pkg in sorted(binaries):
        ver, src, srcver, arch, files = binaries[pkg]
        sid = spdx_id("Package-deb", pkg)
        packages.append({
            "name": pkg,
            "SPDXID": sid,
            "versionInfo": ver,
            "supplier": supplier,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "sourceInfo": f"Debian source package {src} {srcver}; in the image: "
                          + ", ".join(files),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(pkg, ver, arch, distro) + "&upstream="
                                    + f"{src}%40{srcver.replace('+', '%2B').replace(':', '%3A')}",
            }],
        })
        relationships.append({"spdxElementId": root, "relationshipType": "CONTAINS",
                              "relatedSpdxElement": sid})
    for lib, src, srcver in static:
        sid = spdx_id("Package-static", lib)
        packages.append({
            "name": lib,
            "SPDXID": sid,
            "versionInfo": srcver,
            "supplier": supplier,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": "LIBRARY",
            "sourceInfo": f"Debian source package {src} {srcver}, built by scripts/libs.sh "
                          "and linked statically into /kage-controller",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(src, srcver, "source", distro),
            }],
        })
        relationships.append({"spdxElementId": root, "relationshipType": "STATIC_LINK",
                              "relatedSpdxElement": sid})

    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"kage-controller-{version}",
        # Unique per image: the same image always gets the same namespace.
        "documentNamespace": "https://spdx.org/spdxdocs/kage-controller-"
                             f"{version}-{uuid.uuid5(uuid.NAMESPACE_URL, digest)}",
        "creationInfo": {"created": created, "creators": ["Tool: kage scripts/release.py"]},
        "packages": packages,
        "relationships": relationships,
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


def main(argv):
    cmds = {"manifest": (manifest, 2), "name-oci-layout": (name_oci_layout, 2), "sbom": (sbom, 7)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        sys.exit(__doc__)
    cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
