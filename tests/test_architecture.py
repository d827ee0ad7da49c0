"""The house's mechanical rules (issues 11, 17): the import graph of ``src/vaeas`` has no cycle and
no upward edge, no source file is longer than a person reads in one sitting (400 lines), and no
module outside ``vaeas/objectives/`` compares an objective's name (it asks the registry instead).

Read from the source with ``ast`` (nothing is imported), so deferred imports inside functions
count as edges too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "vaeas"
MAX_LINES = 400

#: Layers, lowest first: a module may import its own layer or a lower one, never a higher one.
#: data → models → estimators/metrics → training → evaluation → reporting, config a leaf.
LAYER = {
    "vaeas": 0, "errors": 0, "io": 0, "readers": 0, "progress": 0,
    "config": 1, "runtime": 1,
    "data": 2,
    "models": 3,
    "estimators": 4, "metrics": 4, "passes": 4, "monitoring": 4, "refit": 4,
    # The objectives' losses call the estimators and metrics (lazily: the registry imports no
    # torch); the run object and the grid read the registry; staleness reads the run object.
    "objectives": 4, "run": 4, "experiments": 4, "staleness": 4,
    "training": 5, "contract": 5,
    "evaluation": 6, "pipeline": 6, "dvc_views": 6, "finished": 6, "preflight": 6,
    "report": 7, "verify": 7,        # verify trains and evaluates committed cells, beside the reports
    "cli": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of vaeas that ``name`` imports (at any depth of its code)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
                # Importing a.b.c runs a/__init__ and a/b/__init__ first: those are edges too,
                # except the packages that contain the importer itself.
                parent = target.rpartition(".")[0]
                while parent and parent != "vaeas":
                    if not (name == parent or name.startswith(parent + ".")):
                        out.add(parent)
                    parent = parent.rpartition(".")[0]
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYER["vaeas" if len(parts) == 1 else parts[1]]


def test_every_top_level_module_has_a_layer():
    assert {m.split(".")[1] for m in _modules() if "." in m} <= set(LAYER)


def test_import_graph_has_no_cycle():
    graph, state, stack = _graph(), {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_module_imports_a_higher_layer():
    upward = [f"{a} -> {b}" for a, targets in sorted(_graph().items()) for b in sorted(targets)
              if _layer(b) > _layer(a)]
    assert not upward, "upward imports: " + ", ".join(upward)


def test_config_is_a_leaf():
    assert _graph()["vaeas.config"] <= {"vaeas.errors"}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_source_file_is_longer_than_400_lines(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines"


def _objective_names() -> set[str]:
    """The registered objectives' names, read from the modules' ``name="..."`` (no import)."""
    names = set()
    for path in (PACKAGE / "objectives").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == "name" and isinstance(node.value, ast.Constant):
                names.add(node.value.value)
    return names


def _naming_sites(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines where an objective's name is compared (``==``, ``!=``, ``in`` a literal), used as a
    subscript (``table["vae"]``) or as a default argument: the places a new objective would
    have to be added by hand."""
    def literal(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(literal(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(literal(n) for n in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and literal(node.slice):
            lines.append(node.lineno)
        elif isinstance(node, ast.arguments) and any(literal(d) for d in (*node.defaults, *node.kw_defaults) if d):
            lines.append(node.lineno if hasattr(node, "lineno") else 0)
        elif isinstance(node, ast.AnnAssign) and node.value is not None and literal(node.value):
            lines.append(node.lineno)
    return lines


def test_the_objective_names_are_found():
    assert {"vae", "vaeas"} <= _objective_names()


def test_nothing_outside_objectives_names_an_objective():
    names = _objective_names()
    sites = []
    for name, path in sorted(_modules().items()):
        if name == "vaeas.objectives" or name.startswith("vaeas.objectives."):
            continue
        sites += [f"{path.relative_to(SRC)}:{line}" for line in _naming_sites(ast.parse(path.read_text(encoding="utf-8")), names)]
    assert not sites, "objective names compared outside vaeas/objectives/ (ask vaeas.objectives instead): " + ", ".join(sites)


def test_the_objective_name_check_catches_each_form():
    names = {"vae"}
    for code in ('x == "vae"', 'x in ("vae", "y")', 'd["vae"]', 'def f(o="vae"): pass',
                 'def f(*, o="vae"): pass', 'class A:\n    o: str = "vae"'):
        assert _naming_sites(ast.parse(code), names), code
    assert not _naming_sites(ast.parse('f("vae")\nx = "a" == "b"'), names)
