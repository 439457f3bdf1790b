"""The package is a house of floors: a module imports only from its own floor or the floors below it,
and no chain of imports comes back to where it started (see docs/architecture.md).

Checked on the source with :mod:`ast`, so an import inside a function counts too, and so does a name
imported from a package's ``__init__`` (``from skelreid import __version__`` imports the package
``__init__``, the top floor). Every top-level module and package of ``skelreid`` must have a floor:
a new one without a floor fails here, with the line to add.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "skelreid"

#: The floors, lowest first. An entry is a top-level module or package of ``skelreid`` (its
#: sub-modules live on its floor), or a sub-module that sits on a higher floor than its package.
#: ``__init__`` is the package's own ``skelreid/__init__.py``.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("errors", "version", "cpu_waits", "machine", "console", "io", "faults", "determinism", "registry", "safe_pickle",
                    "device", "presets")),
    ("data: readers -> walks -> windows", ("data",)),
    ("video: frames -> people -> tracks -> walks", ("video",)),
    ("models, losses, features, measures", ("losses", "features", "models", "pretext", "evaluation", "gallery")),
    ("configuration", ("config",)),
    ("training", ("training",)),
    ("run folders", ("runstate", "runs")),
    ("trained encoders -> features", ("encoders",)),
    ("protocols and reports", ("evaluation.protocols", "reports")),
    ("using a trained model", ("inference",)),
    ("orchestration", ("pipeline",)),
    ("several splits", ("multisplit",)),
    ("front door", ("cli", "torchrun", "__init__")),
]


# ----------------------------------------------------------------------------------- the checker
def module_name(path: Path, root: Path) -> str:
    """``skelreid.training.encoder`` for ``skelreid/training/encoder.py``; a package is its ``__init__``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(f, root): f for f in sorted(root.rglob("*.py"))}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module an import of ``name`` executes last: the longest prefix that is a module."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        cand = ".".join(parts[:k])
        if cand in known:
            return cand
    return None


def imports(path: Path, root: Path, known: dict[str, Path]) -> set[str]:
    """The ``skelreid`` modules ``path`` imports anywhere in its source: those it names, and the
    ``__init__`` of their packages (except the packages ``path`` itself lives in, which Python has
    already run). A name imported from a package (``from . import __version__``) is its ``__init__``."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:  # a sub-module, or a name defined in ``base`` (its __init__ for a package)
                names.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    out = set()
    for n in names:
        target = _resolve(n, known)
        if target is None or target == me:
            continue  # outside the package, or itself
        out.add(target)
        parent = target.rpartition(".")[0]  # importing a.b.c first runs a.b's __init__ (not the root's)
        while parent.count(".") >= 1 and not me.startswith(parent + "."):
            out.add(parent)
            parent = parent.rpartition(".")[0]
    return out


def floor_of(module: str, root_name: str, layers) -> int | None:
    """The floor of a module: that of its most specific entry in ``layers``."""
    rel = module[len(root_name) + 1:] if module != root_name else "__init__"
    best, best_len = None, -1
    for i, (_, entries) in enumerate(layers):
        for e in entries:
            if (rel == e or rel.startswith(e + ".")) and len(e) > best_len:
                best, best_len = i, len(e)
    return best


def unassigned(root: Path, layers) -> list[str]:
    """Top-level modules and packages without a floor, with the line that would give them one."""
    tops = sorted({p.stem for p in root.glob("*.py")} | {d.name for d in root.iterdir()
                                                         if d.is_dir() and (d / "__init__.py").exists()})
    listed = {e for _, entries in layers for e in entries}
    return [f"{root.name}/{t}{'' if (root / t).is_dir() else '.py'} has no floor: add {t!r} to the floor it "
            "belongs to in LAYERS (tests/test_layering.py) and to the map in docs/architecture.md"
            for t in tops if t not in listed]


def upward_imports(root: Path, layers) -> list[str]:
    known = modules(root)
    out = []
    for mod, path in known.items():
        mine = floor_of(mod, root.name, layers)
        for target in sorted(imports(path, root, known)):
            theirs = floor_of(target, root.name, layers)
            if mine is not None and theirs is not None and theirs > mine:
                out.append(f"{path.relative_to(root.parent)} (floor {mine}, {layers[mine][0]}) imports {target} "
                           f"(floor {theirs}, {layers[theirs][0]})")
    return out


def cycles(root: Path) -> list[list[str]]:
    """Every import circle (one per strongly connected group of modules), as a path back to its start."""
    known = modules(root)
    graph = {m: sorted(imports(p, root, known)) for m, p in known.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    out = []
    for group in groups:  # one concrete circle through the group's first module
        members, start = set(group), group[0]
        path, seen = [start], {start}
        while True:
            nxt = next((w for w in graph[path[-1]] if w == start and len(path) > 1), None) or \
                next((w for w in graph[path[-1]] if w in members and w not in seen), None)
            if nxt is None or nxt == start:
                out.append(path + [start] if nxt == start else group)
                break
            path.append(nxt)
            seen.add(nxt)
    return out


# ----------------------------------------------------------------------------------- the house
def test_every_module_and_package_has_a_floor():
    missing = unassigned(PKG, LAYERS)
    assert not missing, "\n".join(missing)


def test_no_module_imports_from_a_higher_floor():
    bad = upward_imports(PKG, LAYERS)
    assert not bad, "imports from a higher floor:\n" + "\n".join(bad)


def test_no_import_circles():
    found = cycles(PKG)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_inference_api_stands_below_the_pipeline():
    known = modules(PKG)
    for mod in ("skelreid.inference", "skelreid.gallery", "skelreid.encoders"):
        assert not any(t.startswith("skelreid.pipeline") for t in imports(known[mod], PKG, known)), mod


# ----------------------------------------------------------------------------------- the checker checked
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in files.items():
        f = root / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text, encoding="utf-8")
    return root


def test_the_checker_sees_lazy_upward_imports_circles_through_init_and_new_modules(tmp_path):
    root = _tree(tmp_path, {
        "__init__.py": "def load():\n    from .api import load\n    return load()\n",
        "low.py": "def version():\n    from . import __version__\n    return __version__\n",
        "api.py": "from .low import version\n",
        "sub/__init__.py": "",
        "sub/deep.py": "def f():\n    from ..api import version\n",
        "stray.py": "",
    })
    layers = [("low", ("low", "sub")), ("api", ("api",)), ("top", ("__init__",))]
    up = upward_imports(root, layers)
    assert any(u.startswith("pkg/low.py") and "imports pkg " in u + " " for u in up), up
    assert any(u.startswith("pkg/sub/deep.py") and "imports pkg.api" in u for u in up), up
    circles = cycles(root)
    assert circles and set(circles[0]) == {"pkg", "pkg.api", "pkg.low"}, circles
    missing = unassigned(root, layers)
    assert len(missing) == 1 and "pkg/stray.py has no floor" in missing[0] and "LAYERS" in missing[0]


def test_a_sub_module_can_stand_above_its_package(tmp_path):
    root = _tree(tmp_path, {"__init__.py": "", "ev/__init__.py": "", "ev/metrics.py": "",
                            "ev/protocols.py": "from ..enc import f\nfrom .metrics import g\n",
                            "enc.py": "from .ev.metrics import g\n"})
    layers = [("ev", ("ev",)), ("enc", ("enc",)), ("protocols", ("ev.protocols",)), ("top", ("__init__",))]
    assert upward_imports(root, layers) == [] and cycles(root) == []
    layers = [("ev", ("ev",)), ("enc", ("enc",)), ("top", ("__init__",))]
    assert [u.split(" ")[0] for u in upward_imports(root, layers)] == ["pkg/ev/protocols.py"]
