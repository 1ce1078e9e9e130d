#!/usr/bin/env python3
"""Every source file of kage carries the line
"SPDX-License-Identifier: Apache-2.0" near its top (the licence of LICENSE),
so that scanners and people who copy one file know its licence.

  scripts/spdx.py          add the line where it is missing
  scripts/spdx.py --check  list the files without it, exit 1 (make lint)
"""
import subprocess
import sys

TAG = "SPDX-License-Identifier: Apache-2.0"
# The comment each kind of file carries the tag in.
COMMENT = {".c": "// ", ".h": "// ", ".go": "// ", ".py": "# ", ".sh": "# ", ".lua": "-- "}
NAMED = {"Makefile": "# ", "Dockerfile": "# ", "Dockerfile.arm64": "# ", ".ci/run": "# "}
# Go files whose first lines Go reads (a build constraint) are none here;
# test data and generated charts are not sources.
SKIP_DIRS = ("tests/fuzz/corpus/", "charts/")


def prefix_of(path):
    if path in NAMED:
        return NAMED[path]
    for ext, p in COMMENT.items():
        if path.endswith(ext):
            return p
    return None


def files():
    out = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    for path in out.splitlines():
        if path.startswith(SKIP_DIRS):
            continue
        p = prefix_of(path)
        if p:
            yield path, p


def add(path, prefix):
    with open(path) as f:
        lines = f.read().split("\n")
    line = prefix + TAG
    if path.endswith(".go"):
        line += "\n"  # apart from the package's doc comment
    # After a shebang; otherwise first.
    at = 1 if lines and lines[0].startswith("#!") else 0
    lines.insert(at, line)
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main():
    check = "--check" in sys.argv[1:]
    missing = []
    for path, prefix in files():
        with open(path) as f:
            head = "".join(f.readline() for _ in range(5))
        if TAG not in head:
            missing.append(path)
            if not check:
                add(path, prefix)
    if check and missing:
        for path in missing:
            print(f"{path}: no '{TAG}' in its first five lines (scripts/spdx.py adds it)")
        return 1
    if not check:
        print(f"spdx: added the line to {len(missing)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
