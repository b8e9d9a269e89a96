"""Text helpers for episode files: mojibake repair, Liquid, Markdown, chapters, durations.

Nothing here knows about the store or the scan; `jekyll.py` strings them together.
"""

from __future__ import annotations

import contextvars
import dataclasses
import html
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sized
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, quote_plus, urljoin

import ftfy
import ftfy.badness
from liquid import Environment
from liquid.ast import BlockNode, IllegalNode, Node
from liquid.context import RenderContext
from liquid.exceptions import (
    BlockNestingError,
    ContextDepthError,
    LiquidError,
    LiquidSyntaxError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    ResourceLimitError,
)
from liquid.filter import with_context
from liquid.parser import get_parser
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.template import BoundTemplate
from liquid.token import TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_ILLEGAL, TOKEN_TAG, Token
from markdown_it import MarkdownIt

from syndicator.sources import bounds
from syndicator.sources.base import Chapter, EpisodeData, Guest, ProblemData
from syndicator.textutil import html_to_text
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


# ftfy changes a line only when its badness regex matches it (it gates every repair on
# `ftfy.badness.is_bad`; C1 controls match it too). That regex has ~40 branches tried at
# every position of the text, which made it a fifth of a feed's parse time. Every branch
# matches a non-ASCII character within its first three characters (its classes are
# non-ASCII, and the ASCII-led branches such as `[a-z]\s?[ÃÂ][ ]` need one by the
# third), so trying it only where that can be gives the same answer; a line that is
# mostly non-ASCII is searched whole (tests/test_text.py compares the two).
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_BADNESS_REACH = 2  # characters a badness match can start before its first non-ASCII one


def _looks_bad(line: str) -> bool:
    """`ftfy.badness.is_bad(line)`, trying the regex only near non-ASCII characters."""
    bad = ftfy.badness.BADNESS_RE
    starts: set[int] = set()
    for m in _NON_ASCII.finditer(line):
        p = m.start()
        starts.update(range(max(0, p - _BADNESS_REACH), p + 1))
        if len(starts) * 4 > len(line):  # as many tries as a plain search: do that
            return bad.search(line) is not None
    return any(bad.match(line, p) for p in sorted(starts))


def _fix_line(line: str) -> str:
    # ftfy splits past max_decode_length; those rare lines go to it as they are
    if len(line) <= _FTFY.max_decode_length and not _looks_bad(line):
        return repair_after_ftfy(line)  # what ftfy returns: it repairs nothing not "bad"
    return repair_after_ftfy(ftfy.fix_text(line, _FTFY))


def repair_after_ftfy(fixed: str) -> str:
    """What ftfy leaves alone and we repair: headless emoji, Mac Roman letters."""
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
    tag: str | None = None  # the unknown tag's name, for `ignore_tags`
    severity: str = "warning"


# Per render call (and per thread / task): where tags report what they dropped.
_NOTES: contextvars.ContextVar[list[_Note] | None] = contextvars.ContextVar(
    "syndicator_liquid_notes", default=None
)


def _note(
    kind: str,
    message: str,
    token: Token | None,
    *,
    tag: str | None = None,
    severity: str = "warning",
) -> None:
    notes = _NOTES.get()
    if notes is not None:
        notes.append(_Note(kind, message, token, tag, severity))


@dataclass(frozen=True)
class RenderLimits:
    """Bounds on rendering one file's Liquid: a hostile post must not hang or fill a pass."""

    seconds: float = 5.0  # wall time per rendering
    output_bytes: int = 2 * 1024 * 1024  # output, captures, variables and filter results
    loop_iterations: int = 100_000  # all loop iterations of one rendering together


# Blocks, includes and loops nest at most this deep (python-liquid's own default).
CONTEXT_DEPTH = 30


class RenderStopped(Exception):
    """Rendering was interrupted because the process is shutting down (not the post's fault)."""


class _TimeLimitError(ResourceLimitError):
    """A rendering ran past its time budget."""


class _Budget:
    """Time, shutdown and total loop iterations of one rendering.

    python-liquid asks `if context.disabled_tags:` before every node it renders, and
    that is its only per-node hook: this object stands in for that (always empty) list,
    so `__bool__` is where a long render gets checked (every 128 nodes: a clock read
    per node would cost more than the node).
    """

    __slots__ = ("deadline", "iterations", "limits", "nodes", "should_stop")

    def __init__(self, limits: RenderLimits, should_stop: Callable[[], bool] | None):
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.should_stop = should_stop
        self.iterations = 0
        self.nodes = 0

    def __bool__(self) -> bool:
        self.nodes += 1
        if not self.nodes & 0x7F:
            self.check()
        return False

    def __contains__(self, _item: object) -> bool:
        return False

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise RenderStopped()
        if time.monotonic() > self.deadline:
            raise _TimeLimitError("time limit reached", token=None)

    def add_iterations(self, n: int) -> None:
        self.iterations += n
        if self.iterations > self.limits.loop_iterations:
            raise LoopIterationLimitError("loop iteration limit reached", token=None)
        self.check()


# Integers past this many bits are refused: `times` can square a number into megabytes.
_MAX_INT_BITS = 4096


def _too_big(value: object, limits: RenderLimits) -> bool:
    if isinstance(value, str):
        return len(value) > limits.output_bytes
    if isinstance(value, int):
        return value.bit_length() > _MAX_INT_BITS
    if isinstance(value, Sized) and not isinstance(value, bytes):
        return len(value) > limits.loop_iterations
    return False


def _result_too_big(name: str, value: object, args: tuple[object, ...], limit: int) -> bool:
    """Whether a filter whose result grows as a product of its inputs would exceed `limit`."""
    if name == "replace" and isinstance(value, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        return len(value) + value.count(old) * len(new) > limit
    if name == "join" and isinstance(value, Sized) and args:
        return len(value) * len(str(args[0])) > limit
    return False


class _LimitedContext(RenderContext):
    """A render context that keeps the `_Budget`: loops, filters and nodes are counted."""

    def budget(self) -> _Budget | None:
        b = self.disabled_tags
        return b if isinstance(b, _Budget) else None

    def loop(self, namespace: Any, forloop: Any) -> AbstractContextManager[RenderContext]:
        budget = self.budget()
        if budget is not None:
            budget.add_iterations(int(forloop.length))
        return super().loop(namespace, forloop)

    def stopindex(self, key: str, index: int | None = None) -> int:
        # A loop's slice is taken (and, with `reversed`, copied) before `loop()` sees its
        # length: refuse a huge one here, before python-liquid builds it.
        budget = self.budget()
        if budget is not None and index is not None and index > budget.limits.loop_iterations:
            raise LoopIterationLimitError("loop iteration limit reached", token=None)
        return super().stopindex(key, index)

    def filter(self, name: str, token: Token | None) -> Callable[..., object]:
        func = super().filter(name, token)
        budget = self.budget()
        if budget is None:
            return func
        limits = budget.limits

        # A filter runs in one go: `append` doubling a string or `join` over a range of
        # a billion is refused by its input and result size, not after the fact.
        def limited(value: object, *args: object, **kwargs: object) -> object:
            budget.check()
            if _too_big(value, limits) or _result_too_big(name, value, args, limits.output_bytes):
                raise OutputStreamLimitError("filter input over the size limit", token=token)
            result = func(value, *args, **kwargs)
            if _too_big(result, limits):
                raise OutputStreamLimitError("filter result over the size limit", token=token)
            return result

        return limited


class _LimitedTemplate(BoundTemplate):
    context_class = _LimitedContext


def _limit_message(err: ResourceLimitError, limits: RenderLimits) -> str:
    if isinstance(err, _TimeLimitError):
        return (
            f"rendering its Liquid took over {limits.seconds:g} s (max_render_seconds): "
            "simplify the loops or includes, or raise max_render_seconds for this source"
        )
    if isinstance(err, LoopIterationLimitError):
        return (
            f"its Liquid loops run over {limits.loop_iterations:,} iterations "
            "(max_loop_iterations): shorten the loops, or raise max_loop_iterations"
        )
    if isinstance(err, OutputStreamLimitError | LocalNamespaceLimitError):
        return (
            f"its Liquid renders over {limits.output_bytes:,} bytes of text "
            "(max_render_bytes): shrink it, or raise max_render_bytes for this source"
        )
    if isinstance(err, BlockNestingError):
        return (
            f"its Liquid blocks ({{% if %}}, {{% for %}}…) nest over {CONTEXT_DEPTH} deep: "
            "flatten them"
        )
    if isinstance(err, ContextDepthError):
        return (
            f"its Liquid includes or loops nest over {CONTEXT_DEPTH} deep "
            "(does an include include itself?)"
        )
    return f"its Liquid is over a resource limit: {err.message}"


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
        # Nothing to act on: a plugin tag renders as nothing, like on a site without
        # that plugin. A notice (once per tag per pass), silenced by `ignore_tags`.
        _note(
            "liquid-tag",
            f"unknown Liquid tag '{{% {token.value} %}}' dropped (a Jekyll plugin tag this "
            "tool cannot run; add it to the source's ignore_tags to silence this, or wrap "
            "it in {% raw %} if it should show literally)",
            token,
            tag=token.value,
            severity="notice",
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


def _render_to_string(nodes: Iterable[Node], context: Any, parent: TextIO) -> str:
    # The context's buffer keeps the output limit, counting what `parent` holds already.
    buf = context.get_buffer(parent)
    for node in nodes:
        node.render(context, buf)
    return buf.getvalue()


# Jekyll's include parameters: key="v", key='v' (backslash escapes the quote) or key=variable.
_PARAM = re.compile(r"""([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\S+))""")


def _param_literal(m: re.Match[str]) -> str | None:
    if m.group(2) is not None:
        return m.group(2).replace('\\"', '"')
    if m.group(3) is not None:
        return m.group(3).replace("\\'", "'")
    return None


class _IncludeFailed(Exception):
    """Why an include could not be rendered."""


class _IncludeFromTheme(Exception):
    """An include missing from _includes/ on a site with a theme: the theme has it."""


def _site_theme(context: Any) -> str | None:
    site = context.resolve("site", default={}) or {}
    if not isinstance(site, Mapping):
        return None
    theme = site.get("theme") or site.get("remote_theme")
    return str(theme) if theme else None


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
            out = self._render(context, buffer)
        except _IncludeFromTheme as theme:
            # Jekyll takes it from the theme's gem, which is not here: nothing to fix.
            _note(
                "include",
                f"include '{self.name}' dropped: it is not in _includes/, so it comes from "
                f"the theme '{theme}', which this tool cannot render",
                self.token,
                severity="notice",
            )
            return 0
        except _IncludeFailed as failed:
            if depth:
                raise  # a nested include failed: the post's own include is what gets dropped
            _note("include", f"include '{self.name}' dropped: {failed}", self.token)
            return 0
        finally:
            _INCLUDE_DEPTH.reset(reset)
        buffer.write(out)
        return 1

    def _render(self, context: Any, buffer: TextIO) -> str:
        env: _JekyllEnvironment = context.env
        name = self.name
        try:
            if self.name_template is not None:
                name = _render_to_string(self.name_template.nodes, context, buffer).strip()
            params: dict[str, object] = {}
            for key, literal, var in self.args:
                if var is None:
                    params[key] = literal
                else:
                    parts = [p for p in re.split(r"[.\[\]\"']+", var) if p]
                    path: list[object] = [int(p) if p.isdigit() else p for p in parts]
                    params[key] = context.get(path, token=None, default=None)
        except ResourceLimitError:
            raise  # a limit fails the whole post, not just this include
        except LiquidError as err:
            raise _IncludeFailed(str(err.message)) from None
        template, why = env.load_include(name)
        if template is None and why.startswith("no such file"):
            theme = _site_theme(context)
            if theme:
                raise _IncludeFromTheme(theme)
        if template is None:
            raise _IncludeFailed(why if name == self.name else f"'{name}': {why}")
        if _INCLUDE_DEPTH.get() > _MAX_INCLUDE_DEPTH:
            raise _IncludeFailed("includes nest too deeply (does an include include itself?)")
        try:
            with context.extend({"include": params}):
                return _render_to_string(template.nodes, context, buffer)
        except _IncludeFailed as failed:
            raise _IncludeFailed(f"{failed} (inside '{name}')") from None
        except ResourceLimitError:
            raise
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
            # The parameters may start on the next line.
            name, rest = [*re.split(r"\s+", expr, maxsplit=1), ""][:2]
        name = name.strip("\"'")
        name_template = self.env.from_string(name) if "{{" in name else None
        args = [(m.group(1), _param_literal(m), m.group(4)) for m in _PARAM.finditer(rest)]
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
        code = _render_to_string([self.block], context, buffer).strip("\n")
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

    template_class = _LimitedTemplate

    def __init__(self, includes_dir: Path | None, limits: RenderLimits):
        # Jekyll renders unknown filters as no-ops and undefined variables as empty.
        super().__init__(strict_filters=False)
        # python-liquid's own limits (class attributes, set per instance here): one loop's
        # nested product, the output stream, and what `assign`/`capture` hold.
        self.loop_iteration_limit = limits.loop_iterations
        self.output_stream_limit = limits.output_bytes
        self.local_namespace_limit = limits.output_bytes
        self.context_depth_limit = CONTEXT_DEPTH
        self.block_nesting_limit = CONTEXT_DEPTH
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
            _note(
                n.kind,
                f"in {self.includes_dir.name}/{name}: {n.message}",
                None,
                tag=n.tag,
                severity=n.severity,
            )
        return template, why


@lru_cache(maxsize=32)
def _environment(includes_dir: str | None, limits: RenderLimits) -> _JekyllEnvironment:
    return _JekyllEnvironment(Path(includes_dir) if includes_dir else None, limits)


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
    limits: RenderLimits | None = None,
    should_stop: Callable[[], bool] | None = None,
    ignore_tags: Collection[str] = (),
) -> tuple[str, list[ProblemData]]:
    """Render Jekyll-flavoured Liquid with `page` and `site` in scope.

    Returns the text and the problems. A syntax error or a rendering over one of
    `limits` is one problem of severity "error" (the text returned is then `body`
    unchanged); failed includes are dropped with "warning" problems, unknown plugin
    tags (and includes a theme would provide) with "notice" ones, except tags named in
    `ignore_tags`, dropped silently. `line_offset` is added to body line numbers (the
    lines of front matter above the body). Raises RenderStopped when `should_stop()`
    turns true mid-render.
    """
    if "{{" not in body and "{%" not in body:
        return body, []
    limits = limits or RenderLimits()
    env = _environment(str(includes_dir) if includes_dir else None, limits)
    notes: list[_Note] = []
    reset = _NOTES.set(notes)
    try:
        template = env.from_string(body)
        context = _LimitedContext(
            template, globals=template.make_globals({"page": page, "site": site})
        )
        context.disabled_tags = _Budget(limits, should_stop)  # type: ignore[assignment]
        buf = context.get_buffer()
        template.render_with_context(context, buf)
        text = buf.getvalue()
    except ResourceLimitError as err:
        line = _token_line(err.token, body)
        return body, [
            ProblemData(
                location=location,
                kind="limit",
                message=_limit_message(err, limits),
                line=line + line_offset if line else None,
            )
        ]
    except MemoryError:
        # The limits above keep real posts far from this; a bomb they miss is still
        # this post's problem, not the pass's.
        return body, [
            ProblemData(location, "limit", "rendering its Liquid ran out of memory", None)
        ]
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
        if n.tag is not None and n.tag in ignore_tags:
            continue
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
                severity=n.severity,
            )
        )
    return text, problems


# ---------------------------------------------------------------------------
# Plain-text fields
# ---------------------------------------------------------------------------

# Terminal escape sequences (CSI such as "ESC[31m", OSC such as a window title, and
# two-byte ones) go whole: dropping only the ESC would leave "[31m" in a guest's name.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]"
)
# C0 controls but tab and newline, DEL, C1, and what XML cannot carry at all.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_SCRIPT = re.compile(r"<(script|style)\b[^<>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_BLOCK_TAG = re.compile(r"</?(?:p|br|div|li|h[1-6]|tr|td|th|blockquote|hr)\b", re.IGNORECASE)


def strip_controls(s: str) -> str:
    """`s` without terminal escape sequences and control characters (tab, newline kept)."""
    if s.isprintable():
        return s
    return _CONTROL.sub("", _ANSI.sub("", s))


def clean_text(s: str) -> str:
    """A plain-text field as it may be shown anywhere: no control characters or terminal
    escapes, no markup (tags go, `<script>`/`<style>` with their content; the text between
    tags stays), whitespace folded. Entities are left alone: a field is plain text, so
    `&amp;` is what was written. Idempotent."""
    s = strip_controls(s)
    if "<" in s:
        s = _COMMENT.sub(" ", _SCRIPT.sub(" ", s))
        s = _MARKUP.sub(lambda m: " " if _BLOCK_TAG.match(m.group(0)) else "", s)
    return " ".join(s.split())


def _clean_guest(g: Guest) -> Guest | None:
    name = clean_text(g.name)
    if not name:
        return None
    return dataclasses.replace(
        g,
        name=name,
        title=clean_text(g.title) or None if g.title else None,
        handles={k: h for k, v in g.handles.items() if (h := clean_text(v))},
        website=strip_controls(g.website).strip() or None if g.website else None,
        avatar=strip_controls(g.avatar).strip() or None if g.avatar else None,
    )


def clean_episode(ep: EpisodeData) -> EpisodeData:
    """Every text field of an episode as plain text (`clean_text`); show notes lose their
    control characters (they are HTML, sanitised when the feed is written). Every source
    passes what it hands on through here, so announcements, the CLI and the feed never see
    markup or terminal escapes from a post or a remote feed."""
    guests = [c for c in (_clean_guest(g) for g in ep.guests) if c is not None]
    chapters = [Chapter(start=c.start, title=t) for c in ep.chapters if (t := clean_text(c.title))]
    return dataclasses.replace(
        ep,
        title=clean_text(ep.title),
        description=clean_text(ep.description),
        show_notes_html=strip_controls(ep.show_notes_html),
        guests=guests,
        tags=list(dict.fromkeys(t for t in map(clean_text, ep.tags) if t)),
        categories=list(dict.fromkeys(c for c in map(clean_text, ep.categories) if c)),
        chapters=chapters,
        persons=[
            dataclasses.replace(p, name=n, role=clean_text(p.role), group=clean_text(p.group))
            for p in ep.persons
            if (n := clean_text(p.name))
        ],
        image_alt=clean_text(ep.image_alt or "") or None,
    )


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
_MD_REFLINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_CHAPTER_TYPO = re.compile(  # 1:11-20, 1.11.20, 1:11;20: a typo for H:MM:SS
    r"^\s{0,3}(?:[-*+]|\d+[.)])\s+[\[(]?((\d{1,2})(?::(?!\d\d:)|\.)([0-5]\d)[-.;:]([0-5]\d))"
    r"[\])]?\s*(?:--|–|—|-|:|\|)\s*(\S.*?)\s*$"
)
_MAX_LISTED = 10  # problems listed in one message about a post's chapters
MAX_CHAPTERS = 1000  # per episode: a real Topics list has tens; beyond this is not a list
MAX_CHAPTER_TITLE = 1000  # characters of Markdown read for one chapter's title
_MD_INLINE = re.compile(r"[\\`*_~\[<&]")  # what inline Markdown or HTML could change
_IMG_ALT = re.compile(r'<img\b[^>]*?\balt="([^"]*)"[^>]*>')
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def plain_text(md: str) -> str:
    """Inline Markdown as plain text: links and images keep their text; character
    references (`&amp;`) and backslash escapes (`\\*`) become the characters they mean."""
    if not _MD_INLINE.search(md):
        return " ".join(md.split())  # nothing Markdown would change: skip the parser
    out = _markdown().renderInline(_MD_REFLINK.sub(r"\1", md))
    # markdown-it escapes every '<' and '&' of text, so what is left is tags and references:
    # the one HTML-to-text routine reads them (an image keeps its alt text).
    return html_to_text(_IMG_ALT.sub(r"\1", out))


def unescape_entities(s: str) -> str:
    """Decode `&amp;`, `&#38;`, `&#x26;` once. Only references ended by ';' count, so plain
    text like "AT&T" or "&notes" is never changed."""
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), s) if "&" in s else s


@dataclass
class _TopicLine:
    """One chapter line of the Topics list, before its time is checked."""

    start: int | None  # None: a time with a typo that is resolved later
    typo: str | None  # the time as written, when it had a typo
    typo_start: int  # what the typo reads as, H:MM:SS
    parts: list[str]
    line: int  # in the rendered body, 1-based


def _clock(seconds: int) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def parse_chapters(markdown: str) -> list[Chapter]:
    """Chapters from the "Topics" list (see `read_chapters`), without the problems."""
    return read_chapters(markdown)[0]


def read_chapters(
    markdown: str, location: str = "", *, source: str | None = None, line_offset: int = 0
) -> tuple[list[Chapter], list[ProblemData]]:
    """Chapters from the "Topics" list: `- 1:45 -- High level overview`, and the warnings.

    Uses the list under a heading that says "Topics" when there is one, else any list
    line that starts with a timestamp. A list item continued on the next line keeps its
    whole title; titles are plain text. A time with a typo (`1:11-20`, `1.11.20`,
    `1:11;20`) is read as H:MM:SS when that keeps the list in order, else the line is
    dropped; either way a warning names the line. A chapter that starts before the one
    above it is a warning too. Chapters come back sorted by start time; two at the same
    second are both kept (a notice: the feed keeps the first). Line numbers are those of
    `source` (the body as written) when the line is found there, plus `line_offset`.
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
    found: list[_TopicLine] = []
    current: list[str] | None = None
    for i in range(start, end):
        line = lines[i]
        t = _CHAPTER_TYPO.match(line)
        m = None if t else _CHAPTER.match(line)
        if t:
            h, mm, ss = (int(g) for g in t.group(2, 3, 4))
            current = [t.group(5)]
            found.append(_TopicLine(None, t.group(1), h * 3600 + mm * 60 + ss, current, i + 1))
        elif m:
            current = [m.group(2)]
            found.append(_TopicLine(parse_clock(m.group(1)), None, 0, current, i + 1))
        elif (
            current is not None
            and line.strip()
            and not _LIST_ITEM.match(line)
            and not _HEADING.match(line)
        ):
            current.append(line.strip())  # a wrapped list item
        else:
            current = None

    # Where each line is in the file as written (Liquid may have moved it), once: a huge
    # list stays linear.
    written: dict[str, int] = {}
    for n, text in enumerate((source or "").splitlines(), 1):
        written.setdefault(text, n)

    notes: dict[str, list[tuple[int, str, str]]] = {}  # kind -> (line, message, severity)

    def warn(t: _TopicLine, kind: str, message: str, severity: str = "warning") -> None:
        line = written.get(lines[t.line - 1], t.line) + line_offset
        notes.setdefault(kind, []).append((line, message, severity))

    if len(found) > MAX_CHAPTERS:
        warn(
            found[MAX_CHAPTERS],
            "chapter-count",
            f"{len(found):,} chapter lines: only the first {MAX_CHAPTERS:,} are kept (the "
            "limit per episode); is this list really chapters?",
        )
        del found[MAX_CHAPTERS:]
    # the next well-formed start after each line, once: a typo is checked against it
    after: list[int | None] = [None] * (len(found) + 1)
    for k in range(len(found) - 1, -1, -1):
        after[k] = found[k].start if found[k].start is not None else after[k + 1]
    result: list[Chapter] = []
    prev: int | None = None
    for k, t in enumerate(found):
        raw = " ".join(t.parts)
        if len(raw) > MAX_CHAPTER_TITLE:  # a title, not an essay: bound the Markdown work
            raw = raw[:MAX_CHAPTER_TITLE].rsplit(" ", 1)[0] + " …"
        title = plain_text(raw)
        if not title:
            continue
        if t.start is None:
            nxt = after[k + 1]
            if (prev is not None and t.typo_start <= prev) or (
                nxt is not None and t.typo_start >= nxt
            ):
                warn(
                    t,
                    "chapter-time",
                    f"chapter '{title}' dropped: its time '{t.typo}' is not H:MM:SS, and read "
                    f"as {_clock(t.typo_start)} it would be out of order; write the time as "
                    "H:MM:SS",
                )
                continue
            warn(
                t,
                "chapter-time",
                f"chapter time '{t.typo}' read as {_clock(t.typo_start)} (H:MM:SS); fix the "
                "time in the post",
            )
            t.start = t.typo_start
        if prev is not None and t.start < prev:
            warn(
                t,
                "chapter-order",
                f"chapter '{title}' at {_clock(t.start)} starts before the one above it "
                f"({_clock(prev)}); chapters must run in order, so it is moved into place: "
                "check its time",
            )
        elif prev is not None and t.start == prev:
            warn(
                t,
                "chapter-same-start",
                f"chapter '{title}' starts at the same second as the one above it "
                f"({_clock(prev)}); the feed keeps only the first",
                "notice",
            )
        prev = t.start
        result.append(Chapter(start=t.start, title=title))
    result.sort(key=lambda c: c.start)  # stable: same-second chapters keep their order
    return result, [_one_problem(location, kind, found_) for kind, found_ in notes.items()]


def _one_problem(location: str, kind: str, notes: list[tuple[int, str, str]]) -> ProblemData:
    """The store keeps one open problem per file and kind: several become one message."""
    line, message, severity = notes[0]
    if len(notes) == 1:
        return ProblemData(location, kind, message, line, severity)
    shown = "; ".join(f"line {n}: {m}" for n, m, _ in notes[:_MAX_LISTED])
    more = f"; and {len(notes) - _MAX_LISTED} more" if len(notes) > _MAX_LISTED else ""
    return ProblemData(location, kind, f"{len(notes)} chapters: {shown}{more}", line, severity)


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
