#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a one-layer container image as an OCI image-layout tar archive, the
form `ctr images import` and `podman load` read, without a registry or a
container engine.

The same inputs give the same bytes: every entry of the layer is owned by
0:0 with mtime 0 and is written in path order, gzip carries no name or time,
and the config has no creation date. The image is named in index.json by
both annotations containerd and OCI tools read, so the import needs no
--base-name.

  oci_archive.py --name localhost/kage-pause:latest --out pause.tar \\
      --file build/pause:/pause:0755 --entrypoint /pause

  --file SRC:DEST:MODE   a regular file (MODE octal)
  --link DEST:TARGET     a symbolic link
  --dir DEST:MODE        a directory (parents of the above are made 0755)
  --entrypoint ARG       appended to the image's ENTRYPOINT (repeatable)
  --cmd ARG              appended to the image's CMD (repeatable)
  --env KEY=VALUE        an environment variable (repeatable)
  --arch ARCH            the OCI architecture (default: this machine's)
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile

ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def fail(msg):
    print("oci_archive: " + msg, file=sys.stderr)
    sys.exit(2)


def clean(dest, what):
    """dest as a tar member name (no leading slash); an error names what."""
    if not dest.startswith("/") or "//" in dest or dest == "/":
        fail(f"{what}: the path must be absolute and name a file: {dest!r}")
    parts = dest.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        fail(f"{what}: the path must not contain . or ..: {dest!r}")
    return "/".join(parts)


def mode_of(text, what):
    try:
        mode = int(text, 8)
    except ValueError:
        fail(f"{what}: the mode must be octal, got {text!r}")
    if mode < 0 or mode > 0o7777:
        fail(f"{what}: the mode is out of range: {text!r}")
    return mode


def entries(args):
    """The layer's entries, name -> (kind, detail, mode), parents included."""
    out = {}

    def put(name, value, what):
        if name in out and out[name] != value:
            fail(f"{what}: {name!r} is given twice")
        out[name] = value

    for spec in args.file:
        src, _, rest = spec.partition(":")
        dest, _, mode = rest.rpartition(":")
        if not src or not dest or not mode:
            fail(f"--file: want SRC:DEST:MODE, got {spec!r}")
        if not os.path.isfile(src):
            fail(f"--file: no such regular file: {src!r}")
        put(clean(dest, "--file"), ("file", src, mode_of(mode, "--file")), "--file")
    for spec in args.link:
        dest, _, target = spec.partition(":")
        if not dest or not target:
            fail(f"--link: want DEST:TARGET, got {spec!r}")
        put(clean(dest, "--link"), ("link", target, 0o777), "--link")
    for spec in args.dir:
        dest, _, mode = spec.rpartition(":")
        if not dest or not mode:
            fail(f"--dir: want DEST:MODE, got {spec!r}")
        put(clean(dest, "--dir"), ("dir", None, mode_of(mode, "--dir")), "--dir")
    for name in list(out):
        parts = name.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            kind = out.setdefault(parent, ("dir", None, 0o755))[0]
            if kind != "dir":
                fail(f"{parent!r} is both a directory and a {kind}")
    return out


def layer_tar(items):
    """The uncompressed layer: a tar of items in name order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(items):
            kind, detail, mode = items[name]
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = detail
                tar.addfile(info)
            else:
                with open(detail, "rb") as f:
                    data = f.read()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def blob(blobs, data, media_type, **extra):
    """Stores data as a blob; returns its descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--link", action="append", default=[])
    p.add_argument("--dir", action="append", default=[])
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--arch", default=ARCHES.get(platform.machine(), platform.machine()))
    args = p.parse_args()

    if "/" not in args.name or ":" not in args.name.rsplit("/", 1)[1]:
        fail(f"--name: want a full reference with a tag (host/name:tag), got {args.name!r}")
    for e in args.env:
        if "=" not in e or e.startswith("="):
            fail(f"--env: want KEY=VALUE, got {e!r}")

    items = entries(args)
    if not items:
        fail("the image would be empty: give --file, --link or --dir")
    raw = layer_tar(items)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as g:
        g.write(raw)

    blobs = {}
    layer = blob(blobs, gz.getvalue(), "application/vnd.oci.image.layer.v1.tar+gzip")
    run = {}
    if args.env:
        run["Env"] = args.env
    if args.entrypoint:
        run["Entrypoint"] = args.entrypoint
    if args.cmd:
        run["Cmd"] = args.cmd
    config = {
        "architecture": args.arch,
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created_by": "tests/node/oci_archive.py", "comment": args.name}],
    }
    cfg = blob(blobs, canonical(config), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": cfg, "layers": [layer]}
    man = blob(blobs, canonical(manifest), "application/vnd.oci.image.manifest.v1+json",
               platform={"architecture": args.arch, "os": "linux"},
               annotations={"io.containerd.image.name": args.name,
                            "org.opencontainers.image.ref.name": args.name})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [man]}

    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        add_bytes(tar, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
        add_bytes(tar, "index.json", canonical(index))
        for digest in sorted(blobs):
            add_bytes(tar, "blobs/sha256/" + digest.split(":", 1)[1], blobs[digest])
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
