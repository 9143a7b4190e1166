"""The package's layers import only downwards (a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import xcatrec

ROOT = Path(xcatrec.__file__).parent
#: Bottom to top; a module may import its own layer and the ones below.
LAYERS = [("xcatrec.errors", "xcatrec.names"), ("xcatrec.data",), ("xcatrec.evaluation",), ("xcatrec.core",),
          ("xcatrec.training",), ("xcatrec.models",)]


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return len(LAYERS)  # the top: experiment, tuning, bench, cli, book, testing, book_extras


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m == "xcatrec" or m.startswith("xcatrec.")}


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        module = "xcatrec." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for target in imports(path):
            if layer(target) > layer(module):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_the_layer_map_knows_every_package():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"data", "evaluation", "core", "training", "models"} <= packages
