"""Check a built HTML site's links without the network: ``python tools/check_links.py docs/_build/html``.

Every local ``href`` and ``src`` must name a file of the build, and every ``#anchor`` an
``id`` in its page. A script, stylesheet, image or font loaded from another host (a
CDN) is an error too: the pages must read offline. Links to other sites (``<a
href="https://...">``) are listed, not fetched. Exits 1 on any error.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

EXTERNAL = ("http:", "https:", "//", "mailto:", "ftp:")


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src") or (name == "data" and tag == "object"):
                self.links.append((tag, name, value))


def check(site: Path) -> tuple[list[str], list[str]]:
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    errors, external = [], []
    for page, parsed in pages.items():
        where = page.relative_to(site)
        for tag, attribute, url in parsed.links:
            if url.startswith(EXTERNAL):
                if tag == "a":
                    external.append(f"{where}: {url}")
                else:
                    errors.append(f"{where}: <{tag} {attribute}> loads {url} from the network")
                continue
            if url.startswith(("javascript:", "data:")):
                continue
            parts = urlsplit(url)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                errors.append(f"{where}: <{tag} {attribute}={url!r}>: no such file")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    errors.append(f"{where}: {url!r}: no id {parts.fragment!r} in {target.relative_to(site)}")
    return errors, external


def _parse(path: Path) -> _Page:
    parser = _Page()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    site = Path(argv[0]).resolve()
    errors, external = check(site)
    pages = sum(1 for _ in site.rglob("*.html"))
    for line in errors:
        print(f"error: {line}")
    print(
        f"check_links: {pages} pages, {len(errors)} broken local links or network loads, "
        f"{len(set(u.split(': ', 1)[1] for u in external))} external links (not fetched)"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
