"""The documentation's code runs: every ```python block of every page in docs/.

The blocks of a page run in order in one namespace, as a reader would paste them, under
jax's default configuration (the suite's strict ``jax_numpy_rank_promotion="raise"`` is
for the library's own code; Keras layers, for one, broadcast their biases). A
block with ``>>>`` prompts is a doctest (its printed output is compared); any other
block is executed and must not raise (the pages assert what they claim). From a copy
of tests/ without docs/ beside it (the installed-wheel run) these tests are skipped.

A block that cannot run in one test process (a multi-host script) is preceded by the
comment ``<!-- docs-test: skip, REASON -->``, and a page by ``<!-- docs-test: skip-page,
REASON -->``; the reason names the test that runs that code instead.
"""

from __future__ import annotations

import doctest
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# Generated at build time from the docstrings and the example scripts (tested where they live).
GENERATED = ("_build", "api", "examples")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
SKIP_BLOCK = re.compile(r"<!--\s*docs-test:\s*skip,\s*(?P<reason>.*?)\s*-->\s*$")
SKIP_PAGE = re.compile(r"<!--\s*docs-test:\s*skip-page,\s*(?P<reason>.*?)\s*-->")
# Pages whose author has yet to mark them, with the reason (the marker in the page replaces an entry).
UNMARKED_SKIPS = {
    "scaling_out.md": "a multi-process script (jax.distributed.initialize); tests/test_multiprocess.py runs it",
}
# Pages whose code imports a framework or trains for a while: run by make test-all, sampled out of CI.
SLOW_PAGES: set[str] = set()


def _pages() -> list[Path]:
    if not DOCS.is_dir():
        return []
    return sorted(
        p for p in DOCS.rglob("*.md") if p.relative_to(DOCS).parts[0] not in GENERATED and FENCE.search(p.read_text())
    )


def _blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(first line, code, reason to skip or None) for each python block of the page."""
    text = page.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rpartition("\n")[2]
        skip = SKIP_BLOCK.search(before)
        code = textwrap.dedent(m.group("code"))
        blocks.append((text.count("\n", 0, m.start()) + 2, code, skip.group("reason") if skip else None))
    return blocks


def _param(page: Path):
    name = page.relative_to(DOCS).as_posix()
    marks = [pytest.mark.slow] if name in SLOW_PAGES else []
    skip = SKIP_PAGE.search(page.read_text())
    reason = skip.group("reason") if skip else UNMARKED_SKIPS.get(name)
    if reason:
        marks.append(pytest.mark.skip(reason=f"{name}: {reason}"))
    return pytest.param(page, id=name, marks=marks)


@pytest.mark.unsampled
@pytest.mark.skipif(not DOCS.is_dir(), reason="docs/ is not beside this copy of tests/")
@pytest.mark.parametrize("page", [_param(p) for p in _pages()])
def test_page_code_runs(page: Path):
    with jax.numpy_rank_promotion("allow"):
        _run_page(page)


def _run_page(page: Path) -> None:
    namespace: dict = {"__name__": f"docs.{page.stem}"}
    parser = doctest.DocTestParser()
    for line, code, skip in _blocks(page):
        if skip:
            continue
        where = f"{page.relative_to(DOCS.parent)}:{line}"
        if re.search(r"^\s*>>> ", code, re.M):
            test = parser.get_doctest(code, namespace, where, str(page), line - 1)
            runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
            failures: list[str] = []
            runner.run(test, out=failures.append, clear_globs=False)
            assert runner.failures == 0, "".join(failures)
            namespace = test.globs
        else:
            exec(compile(code, where, "exec"), namespace)


@pytest.mark.skipif(not DOCS.is_dir(), reason="docs/ is not beside this copy of tests/")
def test_every_page_is_found():
    # The pages that exist in the source tree are all collected (a changed fence style would hide them).
    names = {p.relative_to(DOCS).as_posix() for p in _pages()}
    assert {"index.md", "guide/reductions.md", "guide/migration.md", "integrations/optax.md"} <= names, names
    assert {"integrations/flax.md", "integrations/equinox.md"} <= names, names


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None or not DOCS.is_dir(), reason="needs make and docs/")
def test_docs_build(tmp_path):
    """The site builds with warnings as errors, and its local links and images resolve."""
    pytest.importorskip("sphinx")
    out = tmp_path / "html"
    build = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)]
    proc = subprocess.run(build, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    check = [sys.executable, str(DOCS.parent / "tools" / "check_links.py"), str(out)]
    proc = subprocess.run(check, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
