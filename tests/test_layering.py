"""The package's imports run one way: no cycle, no private name borrowed from another module,
and the layers of the README's layout section never import upwards. Read from the source with
``ast`` (every import, at module level or inside a function, counts)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kipoi_maxent"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> list[tuple[str, list[str]]]:
    """``(module, imported names)`` of every import statement of module ``name``."""
    path = MODULES[name]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append((base, [alias.name for alias in node.names]))
    return found


def dependencies(name: str) -> set[str]:
    """Package modules ``name`` imports (a submodule imported by ``from package import sub`` counts)."""
    result = set()
    for module, names in imports_of(name):
        if module in MODULES:
            result.add(module)
        result.update(f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES)
    result.discard(name)
    return result


GRAPH = {name: dependencies(name) for name in MODULES}


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for dependency in sorted(GRAPH[name]):
            if state.get(dependency) == 1:
                cycle = path[path.index(dependency):] + [dependency]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dependency not in state:
                visit(dependency, path + [dependency])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_no_private_name_is_imported_from_another_module():
    """``from kipoi_maxent.x import _name`` and ``x._name`` on an imported package module
    (private *modules*, such as ``_quiet``, are the package's own and may be imported)."""
    borrowed = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        modules = {}  # local name -> package module it is bound to
        for module, names in imports_of(name):
            borrowed += [(name, f"{module}.{n}") for n in names if module.startswith("kipoi_maxent")
                         and n.startswith("_") and not n.startswith("__") and f"{module}.{n}" not in MODULES]
            modules.update({n: f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES})
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                borrowed.append((name, f"{modules[node.value.id]}.{node.attr}"))
    assert not borrowed, borrowed


#: Bottom-up layers (README, *Layout*): a module may import its own layer and those below.
LAYERS = [
    {"kipoi_maxent", "kipoi_maxent._validation", "kipoi_maxent._progress", "kipoi_maxent._quiet", "kipoi_maxent.sequence", "kipoi_maxent.energy",
     "kipoi_maxent.statistics", "kipoi_maxent.records"},
    {"kipoi_maxent.samplers.layers", "kipoi_maxent.samplers._kernels", "kipoi_maxent.samplers._fused_kernels",
     "kipoi_maxent.samplers.naive"},
    {"kipoi_maxent.samplers.incremental", "kipoi_maxent.samplers.windowed"},
    {"kipoi_maxent.samplers.fused"},
    {"kipoi_maxent.samplers.engines", "kipoi_maxent.samplers.mcmc", "kipoi_maxent.samplers"},
]


@pytest.mark.parametrize("level", range(len(LAYERS)))
def test_lower_layers_import_only_their_layer_and_below(level):
    allowed = set().union(*LAYERS[: level + 1])
    for name in LAYERS[level]:
        assert GRAPH[name] <= allowed, f"{name} imports {sorted(GRAPH[name] - allowed)}"


def test_writers_and_analyses_never_reach_into_the_orchestration():
    orchestration = {"kipoi_maxent.pipeline", "kipoi_maxent.cli", "kipoi_maxent.runner", "kipoi_maxent.api"}
    for name in MODULES:
        if name.startswith(("kipoi_maxent.outputs", "kipoi_maxent.samplers", "kipoi_maxent.backends")) or name in {
                "kipoi_maxent.statistics", "kipoi_maxent.features", "kipoi_maxent.periodicity",
                "kipoi_maxent.denovo", "kipoi_maxent.motifs", "kipoi_maxent.diagnostics",
                "kipoi_maxent.calibration", "kipoi_maxent.report"}:
            assert not GRAPH[name] & orchestration, f"{name} imports {sorted(GRAPH[name] & orchestration)}"
