"""Layers: the reader (`cfpairs`) knows neither program, the builder (`cfbuild`) not the trainer, and
no module imports itself back through others, at module level or inside a function."""

from __future__ import annotations

import ast
import functools

from tests.helpers import REPO

PACKAGES = ("cfpairs", "cfbuild", "cftrain", "cli")


def modules() -> dict:
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports() -> dict:
    """{module: the project modules it imports, anywhere in its code} (a name imported from a module
    counts as that module; `from package import submodule` as the submodule)."""
    known = modules()
    return {name: {t for t in targets if t in known and t != name} for name, targets in all_imports().items()}


@functools.cache  # the tests read the graph, none changes it
def all_imports() -> dict:
    """{module: every module it imports, the project's and others', anywhere in its code}."""
    known = modules()
    out = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
                targets |= subs or {base}
        out[name] = targets
    return out


def cycles(graph: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back():
    assert cycles(imports()) == []


def test_the_reader_knows_neither_program_and_the_builder_not_the_trainer():
    graph = imports()
    for name, targets in graph.items():
        if name.endswith("__main__"):  # `python -m cfbuild`: the program, which is the command line
            continue
        if name.startswith("cfpairs"):
            assert not {t for t in targets if t.split(".")[0] in ("cfbuild", "cftrain", "cli")}, name
        if name.startswith("cfbuild"):
            assert not {t for t in targets if t.split(".")[0] in ("cftrain", "cli")}, name


def test_the_graph_sees_deferred_imports():
    graph = imports()
    assert "cftrain.train" in graph["cftrain.jobs"]  # imported inside a function (a worker imports the trainer)


def test_nothing_logs_through_the_logging_module():
    """pytest runs without its logging plugin (pyproject.toml: it costs the quick loop a second),
    which loses nothing while no module logs: the programs print or raise what they have to say."""
    logging_users = sorted(name for name, targets in all_imports().items()
                           if any(t == "logging" or t.startswith("logging.") for t in targets))
    assert logging_users == []
