#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make lint: finds functions of controller/ that nothing calls.

A non-static function defined in controller/**/*.c is unused when no
other place in controller/, bench/ or tests/fuzz/ names it: its own body,
prototypes and the unit tests (tests/unit) do not count, so a function
kept alive only by its test is reported too. main is exempt.

Names listed in scripts/unused-allow.txt (one per line, # comments) are
let through, for functions being removed on another branch; an entry
that is no longer unused is reported too, so the list only shrinks.

Prints file:line: name for each, and exits 1 when there is any.
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFINED_IN = ["controller"]
SEARCHED = ["controller", "bench", "tests/fuzz"]
ALLOW = ROOT / "scripts" / "unused-allow.txt"
TOKEN = re.compile(r"[A-Za-z_]\w*|\S")


def strip(text):
    """text with comments, string and character literals blanked (newlines
    kept, so offsets and line numbers stay)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif c in "\"'":
            end = i + 1
            while end < n and text[end] != c and text[end] != "\n":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
        else:
            out.append(c)
            i += 1
            continue
        out.append(re.sub(r"[^\n]", " ", text[i:end]))
        i = end
    return "".join(out)


def scan(path):
    """(definitions, references) of one file. A definition is
    (name, line, is_static, body_start, body_end) in offsets; a reference
    is (name, offset). Names right after their return type at file scope,
    followed by '(' (prototypes and definitions), are not references;
    names on preprocessor lines always are."""
    text = strip(path.read_text(errors="replace"))
    code, refs = [], []
    offset = 0
    continued = False
    for line in text.splitlines(keepends=True):
        directive = continued or line.lstrip().startswith("#")
        continued = directive and line.rstrip("\n").endswith("\\")
        for m in TOKEN.finditer(line):
            tok = (m.group(), offset + m.start())
            if directive:
                if re.match(r"[A-Za-z_]", tok[0]):
                    refs.append(tok)
            else:
                code.append(tok)
        offset += len(line)

    defs = []
    depth = paren = 0
    stmt = 0  # index of the first token of the current file-scope statement
    body = None  # (name, line, static, start) of the definition whose body is open
    i = 0
    while i < len(code):
        tok, at = code[i]
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                stmt = i + 1
                if body:
                    defs.append(body + (at,))
                    body = None
        elif tok == ";" and depth == 0 and paren == 0:
            stmt = i + 1
        elif tok == "(":
            paren += 1
        elif tok == ")":
            paren -= 1
        elif re.match(r"[A-Za-z_]", tok):
            nxt = code[i + 1][0] if i + 1 < len(code) else ""
            if depth == 0 and paren == 0 and nxt == "(":
                # A declarator: find its closing parenthesis.
                j, level = i + 1, 0
                while j < len(code):
                    level += {"(": 1, ")": -1}.get(code[j][0], 0)
                    if level == 0:
                        break
                    j += 1
                if j + 1 < len(code) and code[j + 1][0] == "{":
                    static = any(t == "static" for t, _ in code[stmt:i])
                    line = text.count("\n", 0, at) + 1
                    body = (tok, line, static, code[j + 1][1])
                    depth, paren, i = 1, 0, j + 2
                    continue
            else:
                refs.append((tok, at))
        i += 1
    return defs, refs


def sources(dirs):
    for d in dirs:
        for dirpath, _, files in os.walk(ROOT / d):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield Path(dirpath) / f


def main():
    scanned = {p: scan(p) for p in sorted(set(sources(SEARCHED)))}
    defined = {p for p in sources(DEFINED_IN) if p.suffix == ".c"}
    uses = {}
    for path, (defs, refs) in scanned.items():
        for name, at in refs:
            own = any(d[0] == name and d[3] <= at <= d[4] for d in defs)
            if not own:
                uses[name] = uses.get(name, 0) + 1

    allow = set()
    if ALLOW.exists():
        for line in ALLOW.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                allow.add(line)

    unused = []
    for path in sorted(defined):
        for name, line, static, _, _ in scanned[path][0]:
            if not static and name != "main" and uses.get(name, 0) == 0:
                unused.append((path.relative_to(ROOT), line, name))

    fail = False
    for path, line, name in unused:
        if name in allow:
            continue
        print(f"{path}:{line}: {name} is defined but never used outside tests/unit")
        fail = True
    for name in sorted(allow - {name for _, _, name in unused}):
        print(f"{ALLOW.relative_to(ROOT)}: {name} is no longer an unused function: "
              "take it off the list")
        fail = True
    return 1 if fail else 0


if __name__ == "__main__":
    sys.exit(main())
