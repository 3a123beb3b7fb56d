"""Builds the real evaluation corpus: two public manuals as Confluence spaces, offline, in one command.

    python bench/corpus.py [--out bench/.corpus]
    python bench/corpus.py --slice tests/data/quality_slice   # the small slice CI runs (committed)

Sources are Debian's documentation packages (installed with apt-get when run as root and missing):
Python 3.11's manual (`python3.11-doc`, Sphinx HTML, ~500 pages) as space PY and git's manual (`git-doc`,
AsciiDoc HTML, ~240 pages) as space GIT. Every HTML page becomes one page in Confluence *storage format*:
headings, code macros (CDATA), tables, note/warning panels, definition lists, links between pages as
`ac:link`/`ri:page` and external links as `<a>`, nested under its section's index page. The output folder
holds `space.json` and one `.xml` per page, the layout `ConfluenceFake(wiki_dir=...)` serves through the real
REST client. Page keys (`py:library/json`, `git:git-rebase`) are what `bench/quality_set/*.json` name as gold
answers; `space.json` maps them to page ids. The output is generated, so it stays out of git.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from bs4 import BeautifulSoup, NavigableString, Tag, XMLParsedAsHTMLWarning
from bs4.element import Comment

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / ".corpus"
PY_DOC = Path("/usr/share/doc/python3.11/html")
GIT_DOC = Path("/usr/share/doc/git-doc")
PACKAGES = {"python3.11-doc": PY_DOC, "git-doc": GIT_DOC}
# Generated indexes, not pages anyone wrote.
PY_SKIP = {"search", "py-modindex", "contents", "genindex"}
GIT_SKIP = {"index", "howto-index"}
ID_BASE = {"PY": 200_000, "GIT": 400_000}
LAST_MODIFIED = "2025-06-01T09:00:00.000Z"
_LANGUAGES = {
    "python3": "python",
    "python": "python",
    "pycon": "python",
    "py": "python",
    "c": "c",
    "sh": "bash",
    "shell": "bash",
    "shell-session": "bash",
    "console": "bash",
    "bash": "bash",
    "none": "none",
    "text": "none",
    "ini": "none",
    "json": "javascript",
    "xml": "xml",
    "html": "html",
}
_ADMONITIONS = {
    "note": "note",
    "warning": "warning",
    "caution": "warning",
    "danger": "warning",
    "important": "warning",
    "attention": "warning",
    "tip": "tip",
    "hint": "tip",
    "seealso": "info",
    "impl-detail": "info",
}


@dataclass(frozen=True)
class Source:
    key: str  # "py:library/json"
    space: str
    path: Path
    rel: str  # "library/json.html"


def ensure_packages() -> None:
    missing = [name for name, folder in PACKAGES.items() if not folder.is_dir()]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        sys.exit(f"install the Debian packages {' '.join(missing)} first")
    subprocess.run(["apt-get", "update", "-qq"], check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def sources() -> Iterator[Source]:
    for path in sorted(PY_DOC.rglob("*.html")):
        rel = path.relative_to(PY_DOC).as_posix()
        stem = rel[: -len(".html")]
        if stem.split("/")[0].startswith(("_", "genindex")) or stem in PY_SKIP:
            continue
        yield Source(f"py:{stem}", "PY", path, rel)
    for path in sorted(GIT_DOC.rglob("*.html")):
        rel = path.relative_to(GIT_DOC).as_posix()
        stem = rel[: -len(".html")]
        if stem in GIT_SKIP:
            continue
        yield Source(f"git:{stem}", "GIT", path, rel)


def _text(el: Tag) -> str:
    return " ".join(el.get_text(" ").split())


def _title(src: Source, soup: BeautifulSoup) -> str:
    if src.space == "GIT":
        name = soup.select_one("#header h2 + .sectionbody p")
        if name is not None and " - " in _text(name):
            command, _, purpose = _text(name).partition(" - ")
            return f"{command} — {purpose}"
        h1 = soup.select_one("#header h1") or soup.find("h1") or soup.find("title")
        return _text(h1).removesuffix(" Manual Page") if h1 else src.rel
    h1 = soup.select_one('div[role="main"] h1') or soup.find("title")
    return _text(h1).replace("¶", "").strip() if h1 else src.rel


def _main(src: Source, soup: BeautifulSoup) -> Tag:
    if src.space == "PY":
        main = soup.select_one('div[role="main"]')
    else:
        main = soup.select_one("#content")
        # A man page's NAME sits in the header; keep it as the page's first paragraph.
        header = soup.select_one("#header")
        if main is not None and header is not None:
            name = header.select_one(".sectionbody")
            if name is not None:
                main.insert(0, name)
    return main or soup.body or soup


class Converter:
    """HTML of one page → Confluence storage format."""

    def __init__(self, src: Source, titles: dict[tuple[str, str], str]) -> None:
        self._src = src
        self._titles = titles  # (space, rel path) → title

    def convert(self, el: Tag) -> str:
        return "".join(self._node(child) for child in el.children)

    def _node(self, node: object) -> str:
        if isinstance(node, Comment):
            return ""
        if isinstance(node, NavigableString):
            return escape(str(node))
        if not isinstance(node, Tag):
            return ""
        name = node.name
        classes = set(node.get("class") or [])
        if name in ("script", "style", "img", "hr", "svg", "form", "input") or "headerlink" in classes:
            return ""
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = _text(node).replace("¶", "").strip()
            return f"<{name}>{escape(text)}</{name}>" if text else ""
        if name == "pre":
            return self._code(node)
        if name == "div" and classes & {"highlight", "listingblock", "literalblock"}:
            pre = node.find("pre")
            if pre is not None:
                return self._code(pre)
        if name == "div" and "admonition" in classes:
            kind = next((_ADMONITIONS[c] for c in classes if c in _ADMONITIONS), "info")
            for title in node.select("p.admonition-title"):
                title.decompose()
            return self._macro(kind, self.convert(node))
        if name == "div" and "admonitionblock" in classes:
            label = node.select_one("td.icon")
            kind = _ADMONITIONS.get(_text(label).lower(), "note") if label else "note"
            content = node.select_one("td.content")
            return self._macro(kind, self.convert(content or node))
        if name == "table":
            return self._table(node)
        if name == "a":
            return self._link(node)
        if name in ("code", "tt", "kbd", "samp"):
            return f"<code>{escape(node.get_text())}</code>"
        if name in ("strong", "b"):
            return f"<strong>{self.convert(node)}</strong>"
        if name in ("em", "i", "cite", "var"):
            return f"<em>{self.convert(node)}</em>"
        if name == "br":
            return "<br />"
        if name in ("p", "ul", "ol", "li", "dl", "dt", "dd", "blockquote"):
            inner = self.convert(node)
            return f"<{name}>{inner}</{name}>" if inner.strip() else ""
        # section, div, span and the like carry no meaning of their own.
        return self.convert(node)

    def _code(self, pre: Tag) -> str:
        code = pre.get_text()
        if not code.strip():
            return ""
        language = "none"
        for parent in pre.parents:
            for cls in parent.get("class") or []:
                if cls.startswith("highlight-"):
                    language = _LANGUAGES.get(cls.removeprefix("highlight-"), "none")
                    break
            else:
                continue
            break
        body = code.rstrip("\n").replace("]]>", "]]]]><![CDATA[>")
        return (
            '<ac:structured-macro ac:name="code" ac:schema-version="1">'
            f'<ac:parameter ac:name="language">{language}</ac:parameter>'
            f"<ac:plain-text-body><![CDATA[{body}]]></ac:plain-text-body></ac:structured-macro>"
        )

    @staticmethod
    def _macro(kind: str, body: str) -> str:
        return (
            f'<ac:structured-macro ac:name="{kind}" ac:schema-version="1">'
            f"<ac:rich-text-body>{body}</ac:rich-text-body></ac:structured-macro>"
        )

    def _table(self, table: Tag) -> str:
        rows: list[str] = []
        for tr in table.find_all("tr"):
            if tr.find_parent("table") is not table:
                continue
            cells = []
            for cell in tr.find_all(["th", "td"], recursive=False):
                tag = "th" if cell.name == "th" or cell.find_parent("thead") is not None else "td"
                span = ""
                for attr in ("colspan", "rowspan"):
                    if cell.get(attr):
                        span += f' {attr}="{int(str(cell.get(attr)))}"'
                inner = self.convert(cell)
                cells.append(f"<{tag}{span}>{inner if '<p>' in inner else f'<p>{inner}</p>'}</{tag}>")
            if cells:
                rows.append(f"<tr>{''.join(cells)}</tr>")
        return f"<table><tbody>{''.join(rows)}</tbody></table>" if rows else ""

    def _link(self, a: Tag) -> str:
        text = self.convert(a)
        href = str(a.get("href") or "")
        if not href or href.startswith("#"):
            return text
        if href.startswith(("http://", "https://")):
            return f"<a href={quoteattr(href)}>{text}</a>"
        target, _, anchor = href.partition("#")
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(self._src.rel), target))
        title = self._titles.get((self._src.space, rel))
        if title is None:
            return text
        plain = " ".join(a.get_text(" ").split()).replace("]]>", "")
        anchor_attr = f" ac:anchor={quoteattr(anchor)}" if anchor else ""
        return (
            f"<ac:link{anchor_attr}><ri:page ri:content-title={quoteattr(title)} />"
            f"<ac:plain-text-link-body><![CDATA[{plain}]]></ac:plain-text-link-body></ac:link>"
        )


def _parent_rel(src: Source, known: set[tuple[str, str]]) -> str | None:
    """The section's index page ("library/index.html" for "library/json.html"), up to the space's home."""
    if src.space == "GIT":
        if "/" in src.rel:
            parent = "howto-index.html" if src.rel.startswith("howto/") else None
            return parent if parent and (src.space, parent) in known else None
        return None
    if src.rel == "index.html":
        return None
    folder = posixpath.dirname(src.rel)
    candidates = [f"{folder}/index.html"] if folder and not src.rel.endswith("/index.html") else []
    candidates.append("index.html")
    for candidate in candidates:
        if (src.space, candidate) in known and candidate != src.rel:
            return candidate
    return None


def build(out: Path) -> dict[str, object]:
    ensure_packages()
    # git's pages are XHTML; the HTML parser reads them as the browser does.
    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    all_sources = list(sources())
    soups: dict[str, BeautifulSoup] = {}
    titles: dict[tuple[str, str], str] = {}
    seen_titles: dict[tuple[str, str], int] = {}
    for src in all_sources:
        soup = BeautifulSoup(src.path.read_text(encoding="utf-8", errors="replace"), "lxml")
        soups[src.key] = soup
        title = _title(src, soup)[:200]
        # Confluence titles are unique within a space.
        n = seen_titles.get((src.space, title), 0)
        seen_titles[(src.space, title)] = n + 1
        titles[(src.space, src.rel)] = title if n == 0 else f"{title} ({src.rel[:-5]})"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ids: dict[tuple[str, str], str] = {}
    counters = dict.fromkeys(ID_BASE, 0)
    for src in all_sources:
        counters[src.space] += 1
        ids[(src.space, src.rel)] = str(ID_BASE[src.space] + counters[src.space])
    known = set(ids)
    entries = []
    chars = 0
    for src in all_sources:
        page_id = ids[(src.space, src.rel)]
        body = Converter(src, titles).convert(_main(src, soups.pop(src.key)))
        chars += len(body)
        file = f"{page_id}.xml"
        (out / file).write_text(body, encoding="utf-8")
        parent = _parent_rel(src, known)
        entries.append(
            {
                "id": page_id,
                "key": src.key,
                "title": titles[(src.space, src.rel)],
                "space": src.space,
                "parent_id": ids[(src.space, parent)] if parent else None,
                "file": file,
                "version": 1,
                "last_modified": LAST_MODIFIED,
                "restricted": False,
            }
        )
    (out / "space.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False), encoding="utf-8")
    return {
        "out": str(out),
        "pages": len(entries),
        "by_space": {s: sum(e["space"] == s for e in entries) for s in ID_BASE},
        "storage_chars": chars,
    }


def build_slice(
    corpus: Path, questions: Path, out: Path, *, max_page_bytes: int, distractors: int
) -> dict[str, object]:
    """A small committed slice for CI: the small pages that answer questions, some other pages, the questions.

    Every question whose gold pages are all small is kept, with every unanswerable question; every k-th
    remaining small page joins as a distractor so that retrieval still has to choose. Parents outside the
    slice are dropped (the pages become top-level).
    """
    entries = json.loads((corpus / "space.json").read_text(encoding="utf-8"))
    size = {e["key"]: (corpus / e["file"]).stat().st_size for e in entries}
    kept_questions = []
    for path in sorted(questions.glob("*.json")):
        for q in json.loads(path.read_text(encoding="utf-8")):
            if q["kind"] == "unanswerable" or all(size[p] <= max_page_bytes for p in q["pages"]):
                kept_questions.append(q)
    gold = {p for q in kept_questions for p in q["pages"]}
    others = [e["key"] for e in entries if e["key"] not in gold and size[e["key"]] <= max_page_bytes]
    step = max(1, len(others) // max(1, distractors))
    keys = gold | set(others[::step][:distractors])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    kept = [dict(e) for e in entries if e["key"] in keys]
    ids = {e["id"] for e in kept}
    for e in kept:
        if e["parent_id"] not in ids:
            e["parent_id"] = None
        shutil.copyfile(corpus / e["file"], out / e["file"])
    (out / "space.json").write_text(json.dumps(kept, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "questions.json").write_text(
        json.dumps(kept_questions, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return {"out": str(out), "pages": len(kept), "questions": len(kept_questions)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--slice", default="", help="write the CI slice of an existing corpus here instead")
    args = parser.parse_args()
    if args.slice:
        result = build_slice(
            Path(args.out),
            ROOT / "bench" / "quality_set",
            Path(args.slice),
            max_page_bytes=20_000,
            distractors=50,
        )
    else:
        result = build(Path(args.out))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
