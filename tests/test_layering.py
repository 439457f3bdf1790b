"""Lower layers never import higher ones: data, models, losses, training and evaluation never import the
command line or the pipeline (checked on the source, so a lazy import inside a function counts too)."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "skelreid"
LOWER = ("data", "models", "training", "evaluation", "video", "losses.py", "features.py", "pretext.py")
HIGHER = ("skelreid.cli", "skelreid.pipeline", "skelreid.torchrun", "skelreid.inference")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def test_lower_layers_never_import_the_command_line_or_the_pipeline():
    offenders = []
    for entry in LOWER:
        files = [PKG / entry] if entry.endswith(".py") else sorted((PKG / entry).rglob("*.py"))
        for f in files:
            bad = sorted(m for m in _imports(f) if any(m == h or m.startswith(h + ".") for h in HIGHER))
            if bad:
                offenders.append(f"{f.relative_to(PKG.parent)}: {', '.join(bad)}")
    assert not offenders, offenders
