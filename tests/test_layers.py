"""Dependencies point one way: base → protocol → market → core → feed | sim → engine → ui → roots.

Reads every module's imports (static ``import``/``from`` statements, including ones inside
functions) and fails on an import that points upward or sideways between feed and sim, and on
any import cycle between kis_desk modules.
"""

from __future__ import annotations

import ast
import pathlib

import kis_desk

ROOT = pathlib.Path(kis_desk.__file__).parent

#: Layer of each top-level part; a module may import its own layer and lower ones only.
LAYERS: dict[str, int] = {
    "aio": 0, "config": 0, "defaults": 0, "paths": 0, "logs": 0, "settings": 0, "__init__": 0,
    "protocol": 1,
    "market": 2,
    "core": 3,
    "feed": 4, "sim": 4,
    "engine": 5,
    "ui": 6,
    # composition roots and entry points: wire everything together
    "wiring": 7, "headless": 7, "selfcheck": 7, "frozen_probe": 7, "cli": 7, "__main__": 7,
    "tools": 7,
}
#: Modules that belong to a higher layer than their package (the GUI's composition root).
ROOT_MODULES = {"kis_desk.ui.app": 7}
#: Same layer number, but independent of each other.
SIDEWAYS_FORBIDDEN = {frozenset({"feed", "sim"})}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: pathlib.Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or node.level and not node.module:
                found.update(f"{target}.{a.name}" for a in node.names)
            else:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "kis_desk" or m.startswith("kis_desk.")}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    if module in ROOT_MODULES:
        return ROOT_MODULES[module]
    return LAYERS[_part(module)]


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target in _imports(path):
            # "from kis_desk.feed import x" may name a submodule or an attribute: resolve to a module
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def test_every_part_has_a_layer():
    unknown = {_part(m) for m in _graph()} - set(LAYERS)
    assert not unknown, f"give these parts a layer in LAYERS: {sorted(unknown)}"


def test_no_upward_or_sideways_import():
    wrong = []
    for module, deps in _graph().items():
        for dep in deps:
            if _layer(dep) > _layer(module):
                wrong.append(f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})")
            elif frozenset({_part(module), _part(dep)}) in SIDEWAYS_FORBIDDEN and _part(module) != _part(dep):
                wrong.append(f"{module} imports {dep} (feed and sim are independent)")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    # package __init__ modules re-export their children: an edge child → its own package is the
    # ordinary "from . import x" shape, not a cycle between jobs
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):     # a module importing its own package's __init__
                continue
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)
