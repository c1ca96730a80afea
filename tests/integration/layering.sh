#!/bin/bash
# layering.sh - the core's components include each other exactly as docs/architecture.md
# says ("Who includes whom"): every arrow of the doc is an #include, no other include crosses
# components, and there are no cycles.
# SPDX-License-Identifier: Apache-2.0
set -eu
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed"
    exit 77
fi
exec python3 - "$top_srcdir" <<'PY'
import glob, os, re, sys

top = sys.argv[1]
doc = open(os.path.join(top, "docs/architecture.md")).read()
block = re.search(r"```deps\n(.*?)```", doc, re.S)
if not block:
    sys.exit("FAIL: layering: docs/architecture.md has no ```deps block")
documented, members = {}, {}
for line in block.group(1).splitlines():
    m = re.match(r"(\w+):([^(]*)(?:\((.*)\))?", line.strip())
    if not m:
        continue
    comp = m.group(1)
    documented[comp] = set(m.group(2).split())
    names = (m.group(3) or comp).replace(".h", "").split()
    members[comp] = set(names) if m.group(3) else {comp}
file_comp = {f: c for c, fs in members.items() for f in fs}

actual, problems = {c: set() for c in documented}, []
for path in sorted(glob.glob(os.path.join(top, "core", "*.[ch]"))):
    base = os.path.basename(path)[:-2]
    comp = file_comp.get(base)
    if comp is None:
        problems.append(f"core/{os.path.basename(path)} belongs to no component of the doc")
        continue
    for inc in re.findall(r'^#include "([^"/]+)\.h"', open(path).read(), re.M):
        if inc == "autoconfig":  # configure's, not a component
            continue
        other = file_comp.get(inc)
        if other is None:
            problems.append(f"{base}: includes {inc}.h, which belongs to no component")
        elif other != comp:
            actual[comp].add(other)

for comp in documented:
    for d in sorted(actual[comp] - documented[comp]):
        problems.append(f"{comp} includes {d}, which the doc does not say")
    for d in sorted(documented[comp] - actual[comp]):
        problems.append(f"the doc says {comp} includes {d}, the sources do not")

# No cycles: a depth-first walk over the real graph.
state = {}
def walk(c, path):
    state[c] = 1
    for d in sorted(actual.get(c, ())):
        if state.get(d) == 1:
            problems.append("cycle: " + " -> ".join(path + [c, d]))
        elif d not in state:
            walk(d, path + [c])
    state[c] = 2
for c in sorted(actual):
    if c not in state:
        walk(c, [])

if problems:
    print("FAIL: layering:\n  " + "\n  ".join(problems))
    sys.exit(1)
edges = sum(len(v) for v in actual.values())
print(f"layering: {len(actual)} components, {edges} arrows, as documented, no cycle")
PY
