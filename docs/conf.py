"""Sphinx configuration for the jaxloss documentation (``make docs``).

Pages are MyST Markdown. The API pages are generated from the docstrings of every
name in ``jaxloss.__all__`` (autosummary), and the example pages from the scripts in
``examples/`` (their docstring, their picture in ``docs/images/`` and their source), so
a new loss or a new example gets its page without editing this site. MathJax is
served from the build's own ``_static`` folder (sphinx-mathjax-offline): nothing is
fetched from the network, at build time or when a page is read.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import jaxloss  # noqa: E402

project = "jaxloss"
author = "The jaxloss authors"
copyright = "The jaxloss authors"
release = version = jaxloss.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md"]
templates_path = ["_templates"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
highlight_language = "none"

autosummary_generate = True
autodoc_typehints = "signature"
# Shown by name: expanded, ArrayLike is a union of eight types in every signature.
autodoc_type_aliases = {"ArrayLike": "ArrayLike", "Reduction": "Reduction", "DTypeLike": "DTypeLike"}
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Gradient", "notes_style"), ("Example", "examples_style")]

html_theme = "furo"
html_title = f"jaxloss {release}"
html_static_path = ["_static"]
html_css_files = ["jaxloss.css"]
html_show_sourcelink = False

# The families, in the order the API index lists them, keyed by the private module
# each loss is defined in; a module missing here gets a title from its name.
FAMILIES = {
    "_regression": "Regression",
    "_probabilistic": "Probabilistic (crossentropies, focal, KL)",
    "_hinge": "Hinge",
    "_segmentation": "Segmentation",
    "_metric": "Metric learning",
    "_sequence": "Sequences",
    "_margin": "Margins (PyTorch's)",
    "_likelihood": "Likelihoods (PyTorch's and optax's)",
    "_contrastive": "Contrastive, ranking and sparse (optax's)",
    "_large_vocab": "Large vocabularies",
    "modules": "Submodules",
}
TOOLS = ("get", "grad", "value_and_grad", "analytic_grad", "checked")

# Pages other authors add; each joins the table of contents once it exists.
OPTIONAL_PAGES = {
    "integrations": ["keras"],
    "scaling": ["scaling_out"],
}


def _api_index() -> str:
    """The API index: every public function of ``jaxloss.__all__``, tools first, then by family."""
    names = [n for n in jaxloss.__all__ if not n.startswith("_")]
    groups: dict[str, list[str]] = {"Resolving, differentiating and checking losses": [n for n in TOOLS if n in names]}
    by_module: dict[str, list[str]] = {}
    for name in names:
        if name in TOOLS:
            continue
        obj = getattr(jaxloss, name)
        if inspect.ismodule(obj):  # a public submodule (jaxloss.keras): its own page
            by_module.setdefault("modules", []).append(name)
            continue
        module = obj.__module__.rpartition(".")[2]
        by_module.setdefault(module, []).append(name)
    order = [m for m in FAMILIES if m in by_module] + sorted(m for m in by_module if m not in FAMILIES)
    for module in order:
        groups[FAMILIES.get(module, module.strip("_").replace("_", " ").capitalize())] = by_module[module]
    lines = [
        "# API reference",
        "",
        f"Every public function of `jaxloss` ({len(names)} in `jaxloss.__all__`), one page each, from its docstring:",
        "the formula, the options, the shapes, the gradient and an example that the test suite runs.",
        "Every loss has the signature `loss(y_true, y_pred, *, <options>, sample_weight=None,",
        'reduction="sum_over_batch_size")` (see [Reductions and weights](../guide/reductions.md)).',
        "",
    ]
    for title, members in groups.items():
        lines += [f"## {title}", "", "```{eval-rst}", ".. currentmodule:: jaxloss", "", ".. autosummary::"]
        lines += ["   :toctree: generated", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in sorted(members)]
        lines += ["```", ""]
    return "\n".join(lines)


def _example_pages() -> list[str]:
    """One page per script in examples/: its docstring, its picture and its source."""
    out = DOCS / "examples"
    out.mkdir(exist_ok=True)
    for stale in out.glob("*.md"):
        stale.unlink()
    names = []
    for script in sorted((ROOT / "examples").glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text())) or script.stem
        title, _, body = doc.partition("\n")
        # The docstrings are reStructuredText: ``code`` becomes `code`; the usage line a code block.
        body = re.sub(r"``([^`]+)``", r"`\1`", body.strip())
        body = re.sub(r"\n\n    (python examples/.*)", r"\n\n```bash\n\1\n```", body)
        image = DOCS / "images" / f"{script.stem}.png"
        # The script's name as the title (short in the sidebar); its docstring's first line leads.
        page = [f"# {script.name}", "", f"**{title.strip()}**", "", body, ""]
        if image.exists():
            page += [f"![{script.stem}](../images/{image.name})", ""]
        page += [
            "## The script",
            "",
            f"`examples/{script.name}`, run from the repository root:",
            "",
            f"```{{literalinclude}} ../../examples/{script.name}",
            ":language: python",
            "```",
            "",
        ]
        (out / f"{script.stem}.md").write_text("\n".join(page))
        names.append(script.stem)
    # The demo first, then the others in name order.
    names.sort(key=lambda n: (n != "train_digits", n))
    index = [
        "# Examples",
        "",
        "Each example trains a real model on data that ships with scikit-learn, with jitted optax steps,",
        "seeded, in under a minute on 2 CPU cores, and writes a picture to `--out` (default `results/`).",
        "`make demo` runs the first; `tests/test_examples.py` runs each in a fast mode.",
        "",
        "```{toctree}",
        ":maxdepth: 1",
        "",
        *names,
        "```",
        "",
    ]
    (out / "index.md").write_text("\n".join(index))
    return names


def _optional_entries(section: str) -> str:
    found = [page for page in OPTIONAL_PAGES[section] if (DOCS / f"{page}.md").exists()]
    if section == "scaling":
        found += [f"accelerators/{p.stem}" for p in sorted((DOCS / "accelerators").glob("*.md"))]
    return "\n".join(found)


def _insert_optional(app, docname, source):
    if docname == "index":
        for section in OPTIONAL_PAGES:
            source[0] = source[0].replace(f"%optional:{section}%", _optional_entries(section))


_GRADIENT = re.compile(r"^(\s*)Gradient: (.*)$")


def _gradient_section(app, what, name, obj, options, lines):
    """``Gradient: text`` in a docstring becomes a Gradient section (napoleon renders it)."""
    for i, line in enumerate(list(lines)):
        match = _GRADIENT.match(line)
        if match:
            indent = match.group(1)
            lines[i : i + 1] = [f"{indent}Gradient:", f"{indent}  {match.group(2)}"]
            j = i + 2
            while j < len(lines) and lines[j].strip():
                lines[j] = "  " + lines[j]
                j += 1


_ALIAS_REF = re.compile(r"TypeAliasForwardRef\('([\w.]+)'\)")


# jax's ArrayLike, as Python expands it inside a union (float first where an option says float | ArrayLike).
_T = r"~?(?:[\w.]*\.)?(?:Array|ndarray|bool|number|int|float|complex)\b"
_ARRAY_LIKE = re.compile(rf"(?<![\w.~]){_T}(?: \| {_T}){{5,}}")
_ANNOTATED = re.compile(r"(?:typing\.)?Annotated\[")


def _strip_annotated(text: str) -> str:
    """``Annotated[T, kind]`` becomes ``T``: the option's kind is for the library, its docs say the rest."""
    while match := _ANNOTATED.search(text):
        start, open_at = match.start(), match.end() - 1
        depth, comma, end = 0, None, None
        for i in range(open_at, len(text)):
            if text[i] == "[":
                depth += 1
            elif text[i] == "]":
                depth -= 1
                if depth == 0:
                    end = i
                    break
            elif text[i] == "," and depth == 1 and comma is None:
                comma = i
        if end is None or comma is None:
            break
        text = text[:start] + text[open_at + 1 : comma] + text[end + 1 :]
    return text


def _alias_names(app, what, name, obj, options, signature, return_annotation):
    """Readable signatures: an alias inside a union (``TypeAliasForwardRef('ArrayLike')``) by its
    name, ``Annotated[T, kind]`` as ``T``, and the expanded ``ArrayLike`` union as ``ArrayLike``."""
    if signature:
        signature = _ARRAY_LIKE.sub("ArrayLike", _strip_annotated(_ALIAS_REF.sub(r"\1", signature)))
    if return_annotation:
        return_annotation = _ALIAS_REF.sub(r"\1", return_annotation)
    return signature, return_annotation


def setup(app):
    (DOCS / "api").mkdir(exist_ok=True)
    (DOCS / "api" / "index.md").write_text(_api_index())
    _example_pages()
    app.connect("source-read", _insert_optional)
    app.connect("autodoc-process-docstring", _gradient_section, priority=400)
    app.connect("autodoc-process-signature", _alias_names)
