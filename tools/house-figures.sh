#!/usr/bin/env bash
# Layout figures for issue 21 item 6 ("the house"): rerun from the repository root.
#   tools/house-figures.sh > figures.txt          # this checkout
#   tools/house-figures.sh DIR > figures.txt      # another tree (e.g. `git archive REV | tar -x -C DIR`)
# Prints the largest files, the crate-internal import graph and its cycles, the repeated
# blocks of six lines or more (needs `duplicates` on PATH), the public modules and the
# unit-test conventions in use.
set -euo pipefail
cd "${1:-$(git rev-parse --show-toplevel)}"

echo "# $(git rev-parse --short HEAD 2>/dev/null || pwd) $(date -u +%FT%TZ)"
echo
echo "## 15 largest files under src/ and tests/it (wc -l)"
find src tests/it -name '*.rs' -print0 | xargs -0 wc -l | grep -v ' total$' | sort -rn | head -15
echo

echo "## crate:: imports per src file (module path -> top-level modules it names)"
python3 - <<'PY'
import os, re, itertools
root = "src"
def modpath(path):
    p = path[len(root)+1:-3].split("/")
    if p[-1] in ("mod", "lib"): p = p[:-1]
    return "::".join(p) or "crate"
edges = {}
for d, _, fs in os.walk(root):
    for f in sorted(fs):
        if not f.endswith(".rs"): continue
        path = os.path.join(d, f)
        src = open(path).read()
        # Test code (inline `mod tests` bodies and test files) is not part of the graph.
        src = re.split(r"#\[cfg\(test\)\]\s*mod tests\s*\{", src)[0]
        if re.search(r"(_tests|/tests|testkit)\.rs$", path): continue
        # Comments (doc links) are not imports.
        src = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("//"))
        me = modpath(path)
        names = set()
        for m in re.finditer(r"crate::(\{[^}]*\}|[a-z_]+(?:::[a-z_]+)?)", src):
            t = m.group(1)
            if t.startswith("{"):
                for part in re.findall(r"([a-z_]+(?:::[a-z_]+)?)\s*(?:::|,|\}|$)", t):
                    names.add(part)
            else:
                names.add(t)
        # one level deeper for export/watch so the wings show
        mods = set()
        for n in names:
            segs = n.split("::")
            if segs[0] in ("export", "watch") and len(segs) > 1 and segs[1].islower() and segs[1] not in ("self",):
                mods.add(segs[0] + "::" + segs[1])
            else:
                mods.add(segs[0])
        mods.discard(me); mods = {m for m in mods if m and m != me.split("::")[0] or "::" in m}
        mods.discard(me)
        edges[me] = sorted(mods)
for k in sorted(edges):
    print(f"{k:28} -> {', '.join(edges[k])}")
print()
print("## import cycles between top-level modules")
top = {}
for k, vs in edges.items():
    a = k.split("::")[0]
    for v in vs:
        b = v.split("::")[0]
        if a != b: top.setdefault(a, set()).add(b)
cycles = set()
for a in top:
    for b in top[a]:
        if a in top.get(b, ()): cycles.add(tuple(sorted((a, b))))
# longer cycles (length 3)
for a in top:
    for b in top.get(a, ()):
        for c in top.get(b, ()):
            if c != a and a in top.get(c, ()) and not {tuple(sorted((a,b))),tuple(sorted((b,c))),tuple(sorted((a,c)))} & cycles:
                cycles.add(tuple(sorted((a, b, c))))
for c in sorted(cycles): print(" <-> ".join(c))
if not cycles: print("none")
print()
print("## imports that run against the layout")
# data flow: watch -> index -> export; general before special; shared below stages.
rank = {"watch": 3, "index": 2, "health": 2, "export": 1}
special = {"seinode"}
general = {"conditions", "index", "view", "watched", "resource", "state", "stats"}
bad = []
for k, vs in edges.items():
    a = k.split("::")[0]
    for v in vs:
        b = v.split("::")[0]
        if a in general and b in special:
            bad.append(f"{k} -> {v}  (general imports a special case)")
        if a in ("index", "watch", "health", "view", "conditions", "seinode", "watched") and b == "export":
            bad.append(f"{k} -> {v}  (an earlier stage imports the export)")
        if a in ("index", "health", "conditions", "seinode", "view", "watched", "export") and b == "watch":
            bad.append(f"{k} -> {v}  (a later stage or shared module imports the watch)")
        if a == "config" and b in ("export", "index", "conditions"):
            bad.append(f"{k} -> {v}  (the flags module reaches into a stage)")
        if a == "export" and b == "config":
            bad.append(f"{k} -> {v}  (a stage reads the flags)")
        if a in ("conditions","index","export","watch","health","lease","admin","state","stats","view","seinode") and b == "crate":
            bad.append(f"{k} -> crate root  (a module imports from lib.rs)")
        if "::" in k and "::" in v and k.split("::")[0] == v.split("::")[0] == "export":
            wa = k.split("::")[1] if k.count("::") >= 2 else None
print("\n".join(sorted(set(bad))) or "none")
PY
echo
echo "## repeated blocks of six lines or more (duplicates --most 60 --min-lines 6)"
dups=$(duplicates --most 60 --min-lines 6 --seconds 120)
echo "$dups" | head -1
echo "runs (each pair's runs: 1 + '+N more runs'): $(echo "$dups" | grep '^D' | awk '{n=1; if (match($0, /\+[0-9]+ more run/)) {n+=substr($0, RSTART+1, RLENGTH-10)}; t+=n} END {print t}')"
echo "rows naming tests/it/conditions.rs: $(echo "$dups" | grep -c 'tests/it/conditions.rs' || true)"
echo "rows with both sides in tests/it/conditions.rs: $(echo "$dups" | grep -cE 'tests/it/conditions.rs:[0-9-]+ ~ tests/it/conditions.rs' || true)"
echo "pairs within tests/it/conditions.rs alone: $(duplicates --repo tests/it --most 200 --min-lines 6 --seconds 60 | grep -cE '^D[0-9]+ conditions.rs:[0-9-]+ ~ conditions.rs' || true)"
echo "$dups"
echo
echo "## modules"
echo "pub mod in src/lib.rs: $(grep -c '^pub mod' src/lib.rs || true)"
echo "pub(crate) mod / mod in src/lib.rs: $(grep -cE '^(pub\(crate\) )?mod ' src/lib.rs || true)"
echo "pub mod anywhere in src/: $(grep -rE '^\s*pub mod ' src | wc -l)"
echo
echo "## unit-test conventions"
echo "inline '#[cfg(test)] mod tests {': $(grep -rlE 'mod tests \{' src | wc -l) files"
echo "#[path] sibling files: $(grep -rn '#\[path' src | wc -l) ($(grep -rn '#\[path' src | sed 's/:.*#\[path = /:/' | tr '\n' ' '))"
echo "'mod tests;' declared as a file: $(grep -rnE '^\s*(pub(\([a-z]+\))? )?mod tests;' src | wc -l) ($(grep -rlE '^\s*(pub(\([a-z]+\))? )?mod tests;' src | tr '\n' ' '))"
echo "other test modules: $(grep -rnE '^\s*mod [a-z_]*tests? \{' src | grep -v 'mod tests {' | sed 's/ {$//' | tr '\n' ' ')"
echo "test files: $(find src -name '*tests.rs' -o -name 'testkit.rs' | sort | tr '\n' ' ')"
