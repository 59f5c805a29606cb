"""The package's import graph: no cycle, and no import that runs back up the layer list.

Every ``import`` / ``from ... import`` statement anywhere in a module's source (also inside
functions, which run later but still tie the two modules together, and under ``if
TYPE_CHECKING:``, which type checkers follow) is an edge from that module to the ``ddlvad``
module it names; relative imports are resolved against the importing module. ``from pkg
import name`` counts as an edge to ``pkg.name`` when that is a module, else to ``pkg``. A
package's ``__init__`` is the package itself; the front door's lazy names (``_EXPORTS``) are
edges too.

The layers are the list in docs/architecture.md (the block after "The package is in layers"),
top first: each module may import its own layer and those above it, never one below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import ddlvad

ROOT = Path(ddlvad.__file__).resolve().parent
PACKAGE = "ddlvad"
LAYERS_DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def module_names() -> dict[str, Path]:
    """{dotted module name: source file} for every module of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set(ddlvad._EXPORTS.values()) if module == PACKAGE else set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            names = [
                f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in modules:  # import a.b.c of a non-module: its module
                name = name.rpartition(".")[0]
            if name.startswith(PACKAGE) and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_function_level_and_relative_imports():
    src = "def f():\n    from ddlvad.io import atomic_write\n"
    tree = ast.parse(src)
    assert any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    node = ast.parse("from ..io import atomic_write").body[0]
    assert _resolve("ddlvad.data.cache", False, node) == "ddlvad.io"
    node = ast.parse("from . import cache").body[0]
    assert _resolve("ddlvad.data", True, node) == "ddlvad.data"
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ddlvad.io import x\n"
    tree = ast.parse(src)
    assert any(isinstance(n, ast.ImportFrom) and n.module == "ddlvad.io" for n in ast.walk(tree))


def readme_layers() -> list[list[str]]:
    """The layer list of docs/architecture.md, top first: each line that names modules
    (``x.py``) or folders (``x/``) before its description (two or more spaces apart) is one
    layer."""
    text = LAYERS_DOC.read_text()
    block = text.split("The package is in layers", 1)[1].split("```", 2)[1]
    layers = []
    for line in block.splitlines():
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0].split()
        if names and all(n.endswith((".py", "/")) for n in names) and names != ["src/ddlvad/"]:
            layers.append(names)
    return layers


def layer_key(module: str) -> str:
    """The layer list's name for the file or folder that holds ``module``."""
    parts = module.split(".")[1:]
    if not parts:
        return "__init__.py"
    sub = ROOT / parts[0]
    return f"{parts[0]}/" if sub.is_dir() else f"{parts[0]}.py"


def upward_imports(graph: dict[str, set[str]], layers: list[list[str]]) -> list[str]:
    """Every edge from a module to one in a layer below its own (``a -> b``)."""
    index = {name: i for i, names in enumerate(layers) for name in names}
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if index[layer_key(b)] > index[layer_key(a)]
    )


def test_layer_list_is_read_and_checked():
    layers = readme_layers()
    flat = [n for names in layers for n in names]
    assert (
        flat[0] == "config.py" and "scoring/" in flat and flat.index("cli/") > flat.index("api.py")
    )
    assert upward_imports({"ddlvad.cli": {"ddlvad.io"}}, layers) == []
    assert upward_imports({"ddlvad.io": {"ddlvad.cli"}}, layers) == ["ddlvad.io -> ddlvad.cli"]


def test_package_imports_have_no_cycle():
    graph = import_graph()
    assert len(graph) > 20
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_sits_in_a_readme_layer_and_imports_only_upward():
    graph = import_graph()
    listed = {n for names in readme_layers() for n in names}
    missing = sorted({layer_key(m) for m in graph} - listed)
    assert not missing, f"not in the layer list of docs/architecture.md: {missing}"
    bad = upward_imports(graph, readme_layers())
    assert not bad, "imports that run back up the layer list:\n" + "\n".join(bad)


FRONT_DOOR_PROBE = """
import sys
import ddlvad
light = not any(m in sys.modules for m in ("torch", "numpy", "ddlvad.api"))
names = [getattr(ddlvad, n) for n in ddlvad.__all__]  # each name resolves
print(light, "torch" in sys.modules, len(ddlvad.__all__))
"""


def test_front_door_is_light_and_every_name_resolves():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", FRONT_DOOR_PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["True", "True"] and int(out[2]) <= 10
    assert (ROOT / "py.typed").is_file()
    assert set(ddlvad.__all__) == {"__version__", *ddlvad._EXPORTS}
