"""Plain text out of .txt, .md, .rst, .html and .pdf files, with titles and source lines.

    >>> doc = extract(Path("guide.md"), b"# Guide\\n\\n## Install\\npip install it\\n")
    >>> doc.title, doc.heading_at(20), doc.line_of(20)
    ('Guide', 'Guide > Install', 4)

`extract` returns the text a chunker cuts, section headings by character offset (so a chunk's
title is the heading it starts under) and a map from character offsets back to 1-based lines of
the source file. HTML text is pulled out with the standard library's parser (scripts and
styles dropped, block tags become line breaks) and keeps the source line each piece came from.
PDF text comes from pypdf page by page; its lines are those of the extracted text and the page
is part of each heading ("Report (page 3)"). A file that cannot be decoded or parsed raises
`Unreadable` with a reason; the ingester lists it and goes on. Not handled: setext (underlined)
Markdown headings, encodings other than UTF-8, scanned PDFs without a text layer.
"""

from __future__ import annotations

import bisect
import io
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["KINDS", "Extracted", "Unreadable", "extract", "kind_of"]

#: file suffix -> kind
KINDS = {".txt": "txt", ".md": "md", ".markdown": "md", ".rst": "rst", ".html": "html", ".htm": "html", ".pdf": "pdf"}

_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>])\1{2,}\s*$")
_HTML_BLOCK = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table td th tr ul".split()
)
_HTML_SKIP = frozenset({"script", "style", "noscript", "template", "head"})


class Unreadable(Exception):
    """The file cannot be turned into text; the message is the reason shown to the user."""


@dataclass
class Extracted:
    text: str
    title: str
    headings: list[tuple[int, str]] = field(default_factory=list)  # (offset, heading path), sorted
    anchors: list[tuple[int, int]] = field(default_factory=lambda: [(0, 1)])  # (offset, source line)

    def __post_init__(self) -> None:
        self._newlines = [m.start() for m in re.finditer("\n", self.text)]
        self._heading_offsets = [h[0] for h in self.headings]
        self._anchor_offsets = [a[0] for a in self.anchors]

    def line_of(self, offset: int) -> int:
        """The 1-based source line of the character at `offset`."""
        i = max(0, bisect.bisect_right(self._anchor_offsets, offset) - 1)
        at, line = self.anchors[i]
        return line + bisect.bisect_left(self._newlines, offset) - bisect.bisect_left(self._newlines, at)

    def title_for(self, start: int, end: int) -> str:
        """The heading of the span [start, end): the one in force at its first line of body text,
        so a chunk that opens with "# A / ## B / text" is titled "A > B"."""
        heads = set(self._heading_offsets)
        p = start
        while p < end:
            while p < end and self.text[p].isspace():
                p += 1
            if p not in heads:
                break
            nl = self.text.find("\n", p, end)
            if nl < 0:
                break
            p = nl + 1
        return self.heading_at(min(p, max(start, end - 1)))

    def heading_at(self, offset: int) -> str:
        """The heading in force at `offset`, or the document title before the first one."""
        i = bisect.bisect_right(self._heading_offsets, offset) - 1
        return self.headings[i][1] if i >= 0 else self.title


def kind_of(path: Path) -> str | None:
    return KINDS.get(path.suffix.lower())


def extract(path: Path, data: bytes) -> Extracted:
    """Text, title, headings and line map of one file, whose bytes are `data`."""
    kind = kind_of(path)
    if kind is None:
        raise Unreadable(f"unsupported file type {path.suffix or '(none)'}")
    if kind == "pdf":
        return _pdf(path, data)
    text = _decode(data)
    if kind == "md":
        return _markdown(path, text)
    if kind == "rst":
        return _rst(path, text)
    if kind == "html":
        return _html(path, text)
    return Extracted(text, path.name)


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise Unreadable("binary data (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n")


def _markdown(path: Path, text: str) -> Extracted:
    headings: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    fence = ""
    offset = 0
    for line in text.split("\n"):
        m = _MD_FENCE.match(line)
        if m and (not fence or m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence)):
            fence = "" if fence else m.group(1)
        elif not fence and (h := _MD_HEADING.match(line)):
            level = len(h.group(1))
            stack = [s for s in stack if s[0] < level] + [(level, h.group(2).strip())]
            headings.append((offset, " > ".join(s[1] for s in stack)))
        offset += len(line) + 1
    h1 = next((h for o, h in headings if " > " not in h), None)
    return Extracted(text, h1 or path.name, headings)


def _rst(path: Path, text: str) -> Extracted:
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use = levels
    stack: list[tuple[int, str]] = []
    headings: list[tuple[int, str]] = []
    for i in range(1, len(lines)):
        under = _RST_ADORN.match(lines[i])
        title = lines[i - 1].strip()
        if not under or not title or _RST_ADORN.match(lines[i - 1]) or len(lines[i].rstrip()) < len(title):
            continue
        over = i >= 2 and lines[i - 2].rstrip() == lines[i].rstrip()
        style = (under.group(1), over)
        if style not in styles:
            styles.append(style)
        level = styles.index(style)
        stack = [s for s in stack if s[0] < level] + [(level, title)]
        headings.append((starts[i - 2 if over else i - 1], " > ".join(s[1] for s in stack)))
    top = next((h for _, h in headings if " > " not in h), None)
    return Extracted(text, top or path.name, headings)


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.anchors: list[tuple[int, int]] = [(0, 1)]
        self.headings: list[tuple[int, str]] = []
        self.title = ""
        self._skip = 0
        self._pre = 0
        self._in_title = False
        self._heading: tuple[int, int] | None = None  # (offset, level) of an open h1-h3

    def _emit(self, s: str) -> None:
        if s:
            self.parts.append(s)
            self.size += len(s)

    def _newline(self) -> None:
        if self.parts and not self.parts[-1].endswith("\n"):
            self._emit("\n")

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _HTML_SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        if tag in _HTML_BLOCK:
            self._newline()
        if tag == "pre":
            self._pre += 1
        if tag in ("h1", "h2", "h3"):
            self._heading = (self.size, int(tag[1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in ("h1", "h2", "h3") and self._heading:
            at = self._heading[0]
            text = " ".join("".join(self.parts)[at:].split()) if self.size > at else ""
            if text:
                self.headings.append((at, text))
                if not self.title and tag == "h1":
                    self.title = text
            self._heading = None
        if tag in _HTML_BLOCK:
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = " ".join(data.split()) or self.title
            return
        if self._skip:
            return
        if not self._pre:
            words = " ".join(data.split())
            if not words:
                if self.parts and not self.parts[-1][-1:].isspace():
                    self._emit(" ")
                return
            lead = " " if data[:1].isspace() and self.parts and not self.parts[-1][-1:].isspace() else ""
            data = lead + words + (" " if data[-1:].isspace() else "")
        line = self.getpos()[0]
        # the first line of `data` may be blank in source (a tag then a line break): count it
        self.anchors.append((self.size, line))
        self._emit(data)


def _html(path: Path, text: str) -> Extracted:
    parser = _HTMLText()
    try:
        parser.feed(text)
        parser.close()
    except (ValueError, AssertionError) as exc:  # html.parser's complaints about broken markup
        raise Unreadable(f"malformed HTML: {exc}") from None
    raw = "".join(parser.parts)
    stripped = raw.rstrip()
    lead = len(stripped) - len(stripped.lstrip())
    body = stripped[lead:]
    anchors = sorted({(max(0, o - lead), ln) for o, ln in parser.anchors})
    headings = [(max(0, o - lead), h) for o, h in parser.headings]
    return Extracted(body, parser.title or path.name, headings, anchors or [(0, 1)])


def _pdf(path: Path, data: bytes) -> Extracted:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise Unreadable("PDF support needs pypdf: pip install 'tooltoken[embed]'") from None
    # pypdf logs its complaints about broken files; we report them as the skip reason instead,
    # and without a handler Python would print them to stderr (the core never prints)
    pdf_log = logging.getLogger("pypdf")
    if not pdf_log.handlers:
        pdf_log.addHandler(logging.NullHandler())
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
        pages = [(page.extract_text() or "").replace("\r\n", "\n") for page in reader.pages]
    except Exception as exc:  # pypdf raises many exception types on malformed files
        raise Unreadable(f"malformed PDF: {type(exc).__name__}: {exc}") from None
    title = " ".join(str(meta_title).split()) or path.name
    parts: list[str] = []
    headings: list[tuple[int, str]] = []
    offset = 0
    for n, page in enumerate(pages, 1):
        if not page.strip():
            continue
        if parts:
            parts.append("\n\n")
            offset += 2
        headings.append((offset, f"{title} (page {n})"))
        parts.append(page)
        offset += len(page)
    if not parts:
        raise Unreadable("the PDF has no extractable text (scanned images?)")
    return Extracted("".join(parts), title, headings)
