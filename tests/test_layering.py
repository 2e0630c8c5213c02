"""Imports run one way: cli → engine, eval, export, data → inference → weights → models → base helpers."""

import ast
from pathlib import Path

import faceyolo

PACKAGE = Path(faceyolo.__file__).parent
# A package may import from its own rank or lower ones; the base helpers are the top-level modules.
RANK = {"cli": 4, "engine": 3, "eval": 3, "export": 3, "data": 3, "inference": 2, "weights": 1, "models": 0}
# The two top-level modules that are not base helpers, and the layer each belongs with.
TOP_LEVEL_LAYER = {"__main__.py": "cli", "demo.py": "inference"}


def _layer(module: str) -> str | None:
    """Return the package of a `faceyolo.<package>...` module name, None for base helpers."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else None


def _imports(path: Path):
    """Yield every faceyolo module a source file imports, at the top or inside functions."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("faceyolo"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("faceyolo"))


def test_no_package_imports_a_higher_layer():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        own = RANK.get(rel.parts[0] if len(rel.parts) > 1 else TOP_LEVEL_LAYER.get(rel.name, ""), -1)
        for module in _imports(path):
            layer = _layer(module)
            if layer is not None and RANK[layer] > own:
                wrong.append(f"{rel} imports {module}")
    assert not wrong, "\n".join(wrong)
