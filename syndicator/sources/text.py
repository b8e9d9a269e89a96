"""Text helpers for episode files: mojibake repair, Liquid, Markdown, chapters, durations.

Nothing here knows about the store or the scan; `jekyll.py` strings them together.
"""

from __future__ import annotations

import contextvars
import html
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, urljoin

import ftfy
from liquid import Environment
from liquid.ast import BlockNode, IllegalNode, Node
from liquid.exceptions import LiquidError, LiquidSyntaxError
from liquid.filter import with_context
from liquid.parser import get_parser
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_ILLEGAL, TOKEN_TAG, Token
from markdown_it import MarkdownIt

from syndicator.sources import bounds
from syndicator.sources.base import Chapter, ProblemData
from syndicator.timeutil import parse_clock, parse_duration

# ---------------------------------------------------------------------------
# Mojibake repair
# ---------------------------------------------------------------------------

# Only the encoding repair: every other ftfy fixer (curly quotes, ligatures, widths,
# HTML entities, NFC) would rewrite correct text, which we must never do.
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=True,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

# A 4-byte UTF-8 emoji read as Mac Roman or cp1252 whose lead byte (F0, shown as an
# invisible private-use char or 'ð') got lost on the way: 'üìÑ' is '📄' minus F0.
_HEADLESS_EMOJI = re.compile(r"[üŸ][^\x00-\x7f]{2}")


def _fix_headless_emoji(m: re.Match[str]) -> str:
    s = m.group(0)
    for codec in ("mac_roman", "cp1252"):
        try:
            raw = s.encode(codec)
        except UnicodeEncodeError:
            continue
        if raw[0] != 0x9F or not all(0x80 <= b <= 0xBF for b in raw[1:]):
            continue
        try:
            ch = (b"\xf0" + raw).decode("utf-8")
        except UnicodeDecodeError:
            continue
        # Emoji and pictographs only: anything else is more likely real text.
        if 0x1F000 <= ord(ch) <= 0x1FAFF:
            return ch
    return s


# A Latin letter (UTF-8 lead byte C3-C5) read as Mac Roman, inside a word: 'S√∏ren'.
# ftfy leaves some of these alone because '√∏' could be mathematics; next to a letter
# it is not.
_MAC_CONT = bytes(range(0x80, 0xC0)).decode("mac_roman")
_MAC_LETTER = re.compile(
    rf"(?<=[^\W\d_])[√ƒ≈][{re.escape(_MAC_CONT)}]|[√ƒ≈][{re.escape(_MAC_CONT)}](?=[^\W\d_])"
)


def _fix_mac_letter(m: re.Match[str]) -> str:
    s = m.group(0)
    try:
        ch = s.encode("mac_roman").decode("utf-8")
    except UnicodeError:
        return s
    return ch if ch.isalpha() else s


def _fix_line(line: str) -> str:
    fixed = ftfy.fix_text(line, _FTFY)
    if "ü" in fixed or "Ÿ" in fixed:
        fixed = _HEADLESS_EMOJI.sub(_fix_headless_emoji, fixed)
    if "√" in fixed or "ƒ" in fixed or "≈" in fixed:
        fixed = _MAC_LETTER.sub(_fix_mac_letter, fixed)
    return fixed


def fix_text(s: str) -> str:
    """Repair double-encoded text ('Filipe N√©vola' -> 'Filipe Névola').

    Correct text (accents, emoji with skin tones, curly quotes, entities) is returned
    unchanged. ASCII lines are skipped, which keeps a typical post well under a
    millisecond: ftfy's own per-line checks are slow on long non-ASCII files.
    """
    if s.isascii():
        return s
    lines = s.splitlines(keepends=True)
    changed = False
    for i, line in enumerate(lines):
        if not line.isascii():
            fixed = _fix_line(line)
            if fixed != line:
                lines[i] = fixed
                changed = True
    return "".join(lines) if changed else s


def fix_data(value: Any) -> Any:
    """`fix_text` applied to every string inside parsed YAML (dicts, lists)."""
    if isinstance(value, str):
        return fix_text(value)
    if isinstance(value, dict):
        return {k: fix_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fix_data(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# Liquid
# ---------------------------------------------------------------------------


@dataclass
class _Note:
    """A warning raised while parsing or rendering, turned into a ProblemData later."""

    kind: str
    message: str
    token: Token | None


# Per render call (and per thread / task): where tags report what they dropped.
_NOTES: contextvars.ContextVar[list[_Note] | None] = contextvars.ContextVar(
    "syndicator_liquid_notes", default=None
)


def _note(kind: str, message: str, token: Token | None) -> None:
    notes = _NOTES.get()
    if notes is not None:
        notes.append(_Note(kind, message, token))


# Tags that only make sense inside a block: alone they are real syntax errors, not
# unknown plugin tags.
_BLOCK_TAGS = ("if", "unless", "for", "case", "capture", "comment", "tablerow", "ifchanged")
_STRUCTURAL = frozenset(
    [f"end{t}" for t in (*_BLOCK_TAGS, "raw", "highlight", "doc")]
    + ["else", "elsif", "when", "break", "continue"]
)


class _UnknownTag(Tag):
    """Replaces Liquid's "illegal tag" handler: a plugin tag we do not know is dropped.

    Jekyll sites use plugin tags (`{% youtube %}`, `{% image %}`): failing the whole
    episode over one would lose its show notes, so it renders as nothing with a warning.
    """

    name = TOKEN_ILLEGAL
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.current
        if token.kind != TOKEN_TAG or not token.value or token.value in _STRUCTURAL:
            msg = "missing tag name" if not token.value else f"unexpected tag '{token.value}'"
            if token.value in _STRUCTURAL:
                msg += " (no matching opening tag)"
            raise LiquidSyntaxError(msg, token=token)
        if stream.peek.kind == TOKEN_EXPRESSION:
            next(stream)
        if token.value.startswith("end") and len(token.value) > 3:
            # The end of an unknown block tag: its opening tag already got the warning.
            return IllegalNode(token)
        _note(
            "liquid-tag",
            f"unknown Liquid tag '{{% {token.value} %}}' dropped (a Jekyll plugin tag this "
            "tool cannot run; wrap it in {% raw %} if it should show literally)",
            token,
        )
        return IllegalNode(token)


class _TrackingTag:
    """Wraps a tag so an error without a position points at the tag that caused it.

    Liquid reports a missing `{% endif %}` at "end of input" with no line; the opening
    `{% if %}` is what a person needs to find.
    """

    def __init__(self, inner: Any):
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_node(self, stream: TokenStream) -> Node:
        token = stream.current
        try:
            return self._inner.get_node(stream)
        except LiquidError as err:
            if err.token is None or err.token.start_index < 0:
                err.token = token
            raise


def _render_to_string(nodes: Iterable[Node], context: Any) -> str:
    buf = io.StringIO()
    for node in nodes:
        node.render(context, buf)
    return buf.getvalue()


_PARAM = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))""")


class _IncludeFailed(Exception):
    """Why an include could not be rendered."""


_INCLUDE_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar(
    "syndicator_include_depth", default=0
)
_MAX_INCLUDE_DEPTH = 10


class _IncludeNode(Node):
    __slots__ = ("args", "name", "name_template")

    def __init__(
        self,
        token: Token,
        name: str,
        name_template: Any,
        args: list[tuple[str, str | None, str | None]],
    ):
        super().__init__(token)
        self.name = name
        self.name_template = name_template
        self.args = args  # (key, literal, variable path)
        self.blank = False

    def __str__(self) -> str:
        return f"{{% include {self.name} %}}"

    def render_to_output(self, context: Any, buffer: TextIO) -> int:
        depth = _INCLUDE_DEPTH.get()
        reset = _INCLUDE_DEPTH.set(depth + 1)
        try:
            out = self._render(context)
        except _IncludeFailed as failed:
            if depth:
                raise  # a nested include failed: the post's own include is what gets dropped
            _note("include", f"include '{self.name}' dropped: {failed}", self.token)
            return 0
        finally:
            _INCLUDE_DEPTH.reset(reset)
        buffer.write(out)
        return 1

    def _render(self, context: Any) -> str:
        env: _JekyllEnvironment = context.env
        name = self.name
        try:
            if self.name_template is not None:
                name = _render_to_string(self.name_template.nodes, context).strip()
            params: dict[str, object] = {}
            for key, literal, var in self.args:
                if var is None:
                    params[key] = literal
                else:
                    parts = [p for p in re.split(r"[.\[\]\"']+", var) if p]
                    path: list[object] = [int(p) if p.isdigit() else p for p in parts]
                    params[key] = context.get(path, token=None, default=None)
        except LiquidError as err:
            raise _IncludeFailed(str(err.message)) from None
        template, why = env.load_include(name)
        if template is None:
            raise _IncludeFailed(why if name == self.name else f"'{name}': {why}")
        if _INCLUDE_DEPTH.get() > _MAX_INCLUDE_DEPTH:
            raise _IncludeFailed("includes nest too deeply (does an include include itself?)")
        try:
            with context.extend({"include": params}):
                return _render_to_string(template.nodes, context)
        except _IncludeFailed as failed:
            raise _IncludeFailed(f"{failed} (inside '{name}')") from None
        except LiquidError as err:
            raise _IncludeFailed(f"'{name}' failed to render: {err.message}") from None


class _JekyllInclude(Tag):
    """Jekyll's include: `{% include file.html key="v" other=page.x %}` from _includes/."""

    name = "include"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        expr = stream.current.value if stream.current.kind == TOKEN_EXPRESSION else ""
        expr = expr.strip()
        if not expr:
            raise LiquidSyntaxError("include needs a file name", token=token)
        if expr.startswith("{{"):
            end = expr.find("}}")
            if end < 0:
                raise LiquidSyntaxError("unclosed '{{' in include file name", token=token)
            name, rest = expr[: end + 2], expr[end + 2 :]
        else:
            name, _, rest = expr.partition(" ")
        name = name.strip("\"'")
        name_template = self.env.from_string(name) if "{{" in name else None
        args = [
            (m.group(1), m.group(2) if m.group(2) is not None else m.group(3), m.group(4))
            for m in _PARAM.finditer(rest)
        ]
        return _IncludeNode(token, name, name_template, args)


class _HighlightNode(Node):
    __slots__ = ("block", "lang")

    def __init__(self, token: Token, lang: str, block: BlockNode):
        super().__init__(token)
        self.lang = lang
        self.block = block
        self.blank = False

    def __str__(self) -> str:
        return f"{{% highlight {self.lang} %}}"

    def render_to_output(self, context: Any, buffer: TextIO) -> int:
        code = _render_to_string([self.block], context).strip("\n")
        buffer.write(f"\n```{self.lang}\n{code}\n```\n")
        return 1


class _HighlightTag(Tag):
    """Jekyll's `{% highlight ruby %}...{% endhighlight %}` as a fenced code block."""

    name = "highlight"
    end = "endhighlight"
    block = True

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        lang = ""
        if stream.current.kind == TOKEN_EXPRESSION:
            lang = stream.current.value.split()[0] if stream.current.value.split() else ""
            next(stream)
        block = get_parser(self.env).parse_block(stream, frozenset((self.end, TOKEN_EOF)))
        stream.expect(TOKEN_TAG, value=self.end)
        return _HighlightNode(token, lang, block)


# -- a few Jekyll filters used in show notes; unknown filters pass values through --


@with_context
def _absolute_url(value: object, *, context: Any) -> str:
    site = context.resolve("site", default={}) or {}
    base = str(site.get("url", "") or "") + str(site.get("baseurl", "") or "")
    return urljoin(base.rstrip("/") + "/", str(value).lstrip("/")) if base else str(value)


@with_context
def _relative_url(value: object, *, context: Any) -> str:
    site = context.resolve("site", default={}) or {}
    base = str(site.get("baseurl", "") or "").rstrip("/")
    return f"{base}/{str(value).lstrip('/')}"


def _slugify(value: object, *_args: object) -> str:
    return slugify(str(value))


def _date_to_string(value: object, *_args: object) -> str:
    return value.strftime("%d %b %Y") if isinstance(value, date) else str(value)


def _date_to_long_string(value: object, *_args: object) -> str:
    return value.strftime("%d %B %Y") if isinstance(value, date) else str(value)


def _date_to_xmlschema(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _array_to_sentence_string(value: object, connector: str = "and") -> str:
    items = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    if len(items) <= 2:
        return f" {connector} ".join(items)
    return ", ".join(items[:-1]) + f", {connector} " + items[-1]


_JEKYLL_FILTERS: dict[str, Any] = {
    "absolute_url": _absolute_url,
    "relative_url": _relative_url,
    "slugify": _slugify,
    "xml_escape": lambda v: html.escape(str(v), quote=False),
    "cgi_escape": lambda v: quote_plus(str(v)),
    "uri_escape": lambda v: quote(str(v), safe="/:?#[]@!$&'()*+,;=%"),
    "markdownify": lambda v: markdown_to_html(str(v)),
    "smartify": lambda v: str(v),
    "normalize_whitespace": lambda v: " ".join(str(v).split()),
    "number_of_words": lambda v, *_: len(str(v).split()),
    "array_to_sentence_string": _array_to_sentence_string,
    "date_to_string": _date_to_string,
    "date_to_long_string": _date_to_long_string,
    "date_to_xmlschema": _date_to_xmlschema,
    "date_to_rfc822": lambda v: (
        v.strftime("%a, %d %b %Y %H:%M:%S %z") if isinstance(v, datetime) else str(v)
    ),
}


class _JekyllEnvironment(Environment):
    """A Liquid environment that behaves like Jekyll's for one site's _includes/."""

    def __init__(self, includes_dir: Path | None):
        # Jekyll renders unknown filters as no-ops and undefined variables as empty.
        super().__init__(strict_filters=False)
        self.includes_dir = includes_dir
        self._includes: dict[str, tuple[tuple[int, int], Any, str, list[_Note]]] = {}
        self.add_tag(_JekyllInclude)
        self.add_tag(_HighlightTag)
        self.tags[TOKEN_ILLEGAL] = _UnknownTag(self)
        for name, tag in list(self.tags.items()):
            self.tags[name] = _TrackingTag(tag)  # type: ignore[assignment]
        for name, func in _JEKYLL_FILTERS.items():
            self.add_filter(name, func)

    def load_include(self, name: str) -> tuple[Any, str]:
        """The parsed include (cached by mtime and size), or None and why not."""
        if self.includes_dir is None:
            return None, "the site has no _includes/ folder"
        base = self.includes_dir.resolve()
        path = (base / name).resolve()
        if base not in path.parents:
            return None, "the file name points outside _includes/"
        try:
            st = path.stat()
        except OSError:
            return None, f"no such file in {self.includes_dir.name}/"
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._includes.get(name)
        if cached is None or cached[0] != stamp:
            template, why, notes = None, "", []
            token = _NOTES.set(notes)
            try:
                source = fix_text(path.read_text(encoding="utf-8"))
                template = self.from_string(source, name=name)
            except (OSError, UnicodeDecodeError) as exc:
                why = f"it could not be read: {exc}"
            except LiquidError as exc:
                line = _token_line(exc.token)
                where = f" (line {line})" if line else ""
                why = f"it has a Liquid syntax error{where}: {exc.message}"
            finally:
                _NOTES.reset(token)
            cached = (stamp, template, why, notes)
            self._includes[name] = cached
        _, template, why, notes = cached
        # Warnings found while parsing the include repeat for every post that uses it.
        for n in notes:
            _note(n.kind, f"in {self.includes_dir.name}/{name}: {n.message}", None)
        return template, why


@lru_cache(maxsize=32)
def _environment(includes_dir: str | None) -> _JekyllEnvironment:
    return _JekyllEnvironment(Path(includes_dir) if includes_dir else None)


def _token_line(token: Token | None, source: str | None = None) -> int | None:
    if token is None or token.start_index < 0 or not token.source:
        return None
    if source is not None and token.source != source:
        return None
    return token.source.count("\n", 0, token.start_index) + 1


def _syntax_message(err: LiquidError) -> str:
    msg = str(err.message)
    tok = err.token
    m = re.match(r"expected tag (end\w+)", msg)
    if m and tok is not None and tok.kind == TOKEN_TAG:
        return (
            f"'{{% {tok.value} %}}' is never closed: add '{{% {m.group(1)} %}}' "
            "(or wrap literal braces in {% raw %}...{% endraw %})"
        )
    return (
        f"Liquid syntax error: {msg} "
        "(fix the tag, or wrap literal braces in {% raw %}...{% endraw %})"
    )


def render_liquid(
    body: str,
    page: Mapping[str, Any],
    site: Mapping[str, Any],
    includes_dir: Path | None,
    location: str,
    *,
    line_offset: int = 0,
) -> tuple[str, list[ProblemData]]:
    """Render Jekyll-flavoured Liquid with `page` and `site` in scope.

    Returns the text and the problems. A syntax error is one problem of severity
    "error" (the text returned is then `body` unchanged); unknown plugin tags and
    failed includes are dropped with "warning" problems. `line_offset` is added to
    body line numbers (the lines of front matter above the body).
    """
    if "{{" not in body and "{%" not in body:
        return body, []
    env = _environment(str(includes_dir) if includes_dir else None)
    notes: list[_Note] = []
    reset = _NOTES.set(notes)
    try:
        template = env.from_string(body)
        text = template.render(page=page, site=site)
    except LiquidError as err:
        line = _token_line(err.token, body)
        return body, [
            ProblemData(
                location=location,
                kind="liquid",
                message=_syntax_message(err),
                line=line + line_offset if line else None,
            )
        ]
    except RecursionError:
        return body, [ProblemData(location, "liquid", "Liquid nesting too deep to render", None)]
    finally:
        _NOTES.reset(reset)
    problems: list[ProblemData] = []
    seen: set[tuple[str, str]] = set()
    for n in notes:
        if (n.kind, n.message) in seen:
            continue  # the same plugin tag used ten times is one warning
        seen.add((n.kind, n.message))
        line = _token_line(n.token, body)
        problems.append(
            ProblemData(
                location=location,
                kind=n.kind,
                message=n.message,
                line=line + line_offset if line else None,
                severity="warning",
            )
        )
    return text, problems


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    linkify = find_spec("linkify_it") is not None
    md = MarkdownIt("commonmark", {"linkify": linkify, "html": True})
    md.enable(["table", "strikethrough"])
    if linkify:
        md.enable("linkify")
    return md


def markdown_to_html(md: str) -> str:
    """CommonMark (+ tables, strikethrough; bare URLs linked when linkify-it is there)."""
    return _markdown().render(md)


# ---------------------------------------------------------------------------
# Chapters and durations
# ---------------------------------------------------------------------------

_TOPICS_HEADING = re.compile(r"^\s{0,3}#{1,6}\s.*\btopics?\b", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^\s{0,3}[-*+]\s+|^\s{0,3}\d+[.)]\s+")
_CHAPTER = re.compile(
    r"^\s{0,3}(?:[-*+]|\d+[.)])\s+[\[(]?(\d{1,2}(?::[0-5]\d){1,2})[\])]?"
    r"\s*(?:--|–|—|-|:|\|)\s*(\S.*?)\s*$"
)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
_MD_REFLINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(?<![\w*_])[*_]{1,3}(?=\S)|(?<=\S)[*_]{1,3}(?![\w*_])")


def plain_text(md: str) -> str:
    """Reduce inline Markdown to plain text: links and images keep their text."""
    s = _MD_IMAGE.sub(r"\1", md)
    s = _MD_LINK.sub(r"\1", s)
    s = _MD_REFLINK.sub(r"\1", s)
    s = _AUTOLINK.sub(r"\1", s)
    s = _HTML_TAG.sub("", s)
    s = s.replace("`", "")
    s = _EMPHASIS.sub("", s)
    return " ".join(s.split())


def parse_chapters(markdown: str) -> list[Chapter]:
    """Chapters from the "Topics" list: `- 1:45 -- High level overview`.

    Uses the list under a heading that says "Topics" when there is one, else any list
    line that starts with a timestamp. A list item continued on the next line keeps its
    whole title. Chapters come back sorted by start time.
    """
    lines = markdown.splitlines()
    start, end = 0, len(lines)
    for i, line in enumerate(lines):
        if _TOPICS_HEADING.match(line):
            start = i + 1
            end = next(
                (j for j in range(start, len(lines)) if _HEADING.match(lines[j])), len(lines)
            )
            break
    chapters: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    for line in lines[start:end]:
        m = _CHAPTER.match(line)
        if m:
            current = [m.group(2)]
            chapters.append((parse_clock(m.group(1)), current))
        elif (
            current is not None
            and line.strip()
            and not _LIST_ITEM.match(line)
            and not _HEADING.match(line)
        ):
            current.append(line.strip())  # a wrapped list item
        else:
            current = None
    result = [Chapter(start=s, title=plain_text(" ".join(parts))) for s, parts in chapters]
    result = [c for c in result if c.title]
    result.sort(key=lambda c: c.start)
    return result


def parse_duration_field(value: str | int | float) -> int:
    """Seconds from front matter's `mp3_duration`: "1:43:06", "58:12", "2:50", "3600".

    A value past `bounds.MAX_DURATION_SECONDS`, or not finite, raises `bounds.OutOfRange`.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use H:MM:SS, MM:SS or seconds")
    if isinstance(value, int | float):
        return bounds.duration_seconds(value)
    raw = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return bounds.duration_seconds(raw.split(".")[0])
    try:
        secs = parse_clock(raw) if ":" in raw else parse_duration(raw).total_seconds()
    except OverflowError:  # e.g. "99999999999999 weeks": past what a timedelta holds
        secs = float("inf")
    except ValueError:
        secs = None
    if secs is not None:
        return bounds.duration_seconds(secs)
    raise ValueError(f"invalid duration {value!r}: use H:MM:SS, MM:SS or a number of seconds")


def slugify(text: str) -> str:
    """Jekyll's default slugify: lower case, runs of non-alphanumerics become '-'."""
    return re.sub(r"[\W_]+", "-", text.lower()).strip("-")
