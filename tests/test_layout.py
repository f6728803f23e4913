"""The package's shape: every loss fully declared, an acyclic import graph that never
reaches into benchmarks/ or jax._src, and a README that lists every loss."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import jaxloss
from jaxloss._core import REGISTRY

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The package under test: the checkout's, or the installed wheel's (where ROOT holds only tests/).
PACKAGE = pathlib.Path(jaxloss.__file__).resolve().parent


def test_every_loss_declares_its_domains_and_examples():
    assert len(REGISTRY) == len(jaxloss.declarations()) >= 41
    for name, spec in REGISTRY.items():
        assert spec.examples, name
        for role in ("y_true", "y_pred"):
            domain = spec.domain(role, {})
            assert hasattr(domain, "rules") and hasattr(domain, "draw"), (name, role, domain)
        assert spec.function.__doc__ and "Example" in spec.function.__doc__, name
        assert getattr(jaxloss, name) is spec.function, name


def _imports(path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(jaxloss modules imported at module level, every module imported anywhere)."""
    tree = ast.parse(path.read_text())
    top, anywhere = set(), set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: inside jaxloss
                base = "jaxloss" + ("." + base if base else "")
                names = [base] if node.module else [f"jaxloss.{a.name}" for a in node.names]
            else:
                names = [base]
        anywhere.update(names)
        if node in tree.body:
            top.update(n for n in names if n == "jaxloss" or n.startswith("jaxloss."))
    return top, anywhere


def test_the_import_graph_is_acyclic_and_stays_in_the_package():
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        module = "jaxloss" if path.stem == "__init__" else f"jaxloss.{path.stem}"
        top, anywhere = _imports(path)
        assert not any(n == "benchmarks" or n.startswith("benchmarks.") for n in anywhere), path.name
        assert not any(n.startswith("jax._src") for n in anywhere), path.name
        graph[module] = {n for n in top if n != module and n != "jaxloss"}
    assert {"jaxloss", "jaxloss._core", "jaxloss._registry"} <= set(graph), sorted(graph)
    # Depth-first search for a back edge.
    state: dict[str, int] = {}

    def visit(node: str, trail: tuple[str, ...]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join((*trail, node, nxt))}"
            if nxt not in state:
                visit(nxt, (*trail, node))
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, ())


def test_the_readme_lists_every_loss():
    if not (ROOT / "README.md").is_file():
        pytest.skip("no README.md beside this copy of tests/ (the installed-wheel run)")
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z_0-9]+)[`(]", readme, flags=re.M))
    missing = sorted(set(REGISTRY) - listed)
    assert not missing, f"losses missing from the README's tables: {missing}"
