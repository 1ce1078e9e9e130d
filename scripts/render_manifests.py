#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prints the objects `kubectl apply -k DIR` would send, as one YAML stream,
without kubectl: kage's kustomizations only list resources (files and other
kustomization directories), so rendering is following that list in order.
Any other kustomization field is refused by name rather than ignored, since
the output would then differ from what kubectl applies."""

import os
import sys

import yaml

ALLOWED = {"apiVersion", "kind", "resources"}


def render(path, out, seen):
    kfile = os.path.join(path, "kustomization.yaml")
    real = os.path.realpath(kfile)
    if real in seen:
        sys.exit(f"render_manifests: {kfile} is included twice")
    seen.add(real)
    with open(kfile) as f:
        k = yaml.safe_load(f) or {}
    extra = sorted(set(k) - ALLOWED)
    if extra:
        sys.exit(f"render_manifests: {kfile}: field {extra[0]} is not supported here; "
                 "render with kubectl kustomize instead")
    for res in k.get("resources") or []:
        p = os.path.join(path, res)
        if os.path.isdir(p):
            render(p, out, seen)
            continue
        with open(p) as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    out.append(doc)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: render_manifests.py DIR")
    docs = []
    render(sys.argv[1], docs, set())
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
