"""Episodes from a Jekyll site's posts.

`scan()` walks `_posts/` (recursively: posts move between folders), skips files whose
stat stamp is unchanged without reading them, skips touched files whose bytes hash the
same, and parses the rest into EpisodeData: in this process, or on every core when a
pass has many to parse (sources/pool.py). One bad file is one ProblemData and never
stops the scan; the store keeps what it had for that file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import yaml

from syndicator.sources import bounds
from syndicator.sources.base import (
    Chapter,
    Enclosure,
    EpisodeData,
    FileResult,
    FileStamp,
    Guest,
    ProblemData,
    ScanResult,
)
from syndicator.sources.kinds import PollContext, Polled, PollJob
from syndicator.sources.pool import Mode, ParsePool, mode_from_env
from syndicator.sources.text import (
    RenderLimits,
    RenderStopped,
    clean_episode,
    fix_data,
    fix_text,
    markdown_to_html,
    parse_duration_field,
    read_chapters,
    render_liquid,
    slugify,
    unescape_entities,
)
from syndicator.sources.yamlload import YamlTooLarge, load_bounded

if TYPE_CHECKING:
    from syndicator.config import JekyllSourceConfig

log = logging.getLogger(__name__)

# Bump when parsing changes what an unchanged file yields: part of SiteInfo.fingerprint.
PARSER_VERSION = "2"

# auto: parse in this process until a pass has this much post text to read, then in a pool
# sized to the cores. A post parses at ~1 KB/ms, so this is about 1 s of parsing: what a
# pool costs to start.
PROCESS_AFTER_BYTES = 1024 * 1024

MARKDOWN_EXTS = frozenset({".md", ".markdown", ".mkd", ".mkdn", ".mkdown"})
POST_EXTS = MARKDOWN_EXTS | {".html", ".htm"}

_POST_NAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
_NUMBERED = re.compile(r"^(\d+)-(.+)$")
_GUEST_N = re.compile(r"^guest_(\d+)$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*(?:\.[\w-]+)*)\}")
_DATE_STR = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?$"
)

TEMPLATE_FIELDS = ("guid", "episode_url", "enclosure_url", "image_url", "transcript_url")
# Settings that change what a post renders to (or whether it is over a limit).
_LIMIT_FIELDS = (
    "ignore_tags",
    "max_render_seconds",
    "max_render_bytes",
    "max_loop_iterations",
    "max_yaml_nodes",
)
_PLACEHOLDER_ROOTS = frozenset(
    {"site", "page", "slug", "number", "year", "month", "day", "title_slug", "guest_avatar"}
)
_TRANSCRIPT_ONLY = frozenset({"ext", "transcript"})
_TRANSCRIPT_TYPES = {
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
    "json": "application/json",
    "txt": "text/plain",
}
_IMAGE_EXT = re.compile(r"\.(jpe?g|png|gif|webp|avif|svg)$", re.IGNORECASE)


@dataclass
class SiteInfo:
    """Where a Jekyll source's posts live and what its `_config.yml` says."""

    root: Path  # the source root: paths in results are relative to it
    posts_dir: Path
    site: dict[str, Any] = field(default_factory=dict)  # _config.yml, mojibake-fixed
    includes_dir: Path | None = None
    config_file: Path | None = None
    problems: list[ProblemData] = field(default_factory=list)  # errors: scan cannot run
    # Changes when anything besides a post changes what posts render to (_config.yml,
    # _includes/, the source's templates, this parser): then pass force=True to scan().
    fingerprint: str = ""


class _Bad(Exception):
    """One file's one problem: the file is "bad" and its stored data is kept."""

    def __init__(self, kind: str, message: str, line: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line


class _Missing(Exception):
    """A template placeholder with no value for this post."""


# ---------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------


def load_site(cfg: JekyllSourceConfig) -> SiteInfo:
    """Find the posts folder, `_config.yml` and `_includes/` for a source; never raises.

    `cfg.path` may be a Jekyll site root (has `_config.yml` or `_posts/`), the `_posts`
    folder itself, or a bare folder of posts.
    """
    path = Path(cfg.path)
    if path.name == "_posts":
        root, posts = path.parent, path
    elif (path / "_posts").is_dir() or (path / "_config.yml").is_file():
        root, posts = path, path / "_posts"
    else:
        root, posts = path, path
    info = SiteInfo(root=root, posts_dir=posts)
    digest = hashlib.sha256(PARSER_VERSION.encode())
    for name in (*TEMPLATE_FIELDS, "enclosure_type", "categories", "transcripts", *_LIMIT_FIELDS):
        digest.update(f"{name}={getattr(cfg, name, '')!r}\n".encode())

    config_file = root / "_config.yml"
    if config_file.is_file():
        info.config_file = config_file
        rel = _rel(config_file, root)
        try:
            raw = config_file.read_bytes()
            digest.update(raw)
            data = load_bounded(fix_text(raw.decode("utf-8-sig")), cfg.max_yaml_nodes)
        except YamlTooLarge as exc:
            info.problems.append(
                ProblemData(
                    rel,
                    "yaml",
                    f"the site config is refused: {exc.message}; write the values out "
                    "instead of nesting aliases, or raise max_yaml_nodes for this source",
                    line=exc.line + 1 if exc.line is not None else None,
                )
            )
            data = {}
        except RecursionError:
            info.problems.append(ProblemData(rel, "yaml", "the site config nests too deeply"))
            data = {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            info.problems.append(
                ProblemData(
                    rel,
                    "yaml",
                    f"invalid YAML in the site config: {_yaml_reason(exc)}; "
                    "fix it (Jekyll cannot build the site either)",
                    line=mark.line + 1 if mark is not None else None,
                )
            )
            data = {}
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            info.problems.append(ProblemData(rel, "config", f"cannot read the site config: {exc}"))
            data = {}
        if data is None:
            data = {}
        if not isinstance(data, dict):
            info.problems.append(
                ProblemData(rel, "config", "the site config must be a mapping of key: value")
            )
            data = {}
        info.site = fix_data(data)

    inc_name = str(info.site.get("includes_dir") or "_includes")
    inc = root / inc_name
    if inc.is_dir():
        info.includes_dir = inc
        try:
            for entry in sorted(os.scandir(inc), key=lambda e: e.name):
                if entry.is_file():
                    st = entry.stat()
                    digest.update(f"{entry.name}:{st.st_mtime_ns}:{st.st_size}\n".encode())
        except OSError:
            pass
    # Transcripts live beside the posts: a new one must reach its episode without an edit.
    if cfg.transcripts is not None and Path(cfg.transcripts).is_dir():
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(cfg.transcripts), key=lambda e: e.name):
                digest.update(f"t:{entry.name}\n".encode())
    info.fingerprint = digest.hexdigest()
    return info


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    if problem:
        return f"{problem} ({context})" if context else str(problem)
    return str(exc).splitlines()[0]


# ---------------------------------------------------------------------------
# Templates: "{site.url}/podcast/{slug}"
# ---------------------------------------------------------------------------


def _lookup(data: Any, dotted: list[str]) -> Any:
    for part in dotted:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _check_templates(cfg: JekyllSourceConfig, site: SiteInfo) -> list[ProblemData]:
    """Config-level problems: an unknown placeholder, or a site key _config.yml lacks."""
    problems = []
    where = f"source '{cfg.name}'"
    for name in TEMPLATE_FIELDS:
        template = getattr(cfg, name, "") or ""
        for m in _PLACEHOLDER.finditer(template):
            parts = m.group(1).split(".")
            root = parts[0]
            allowed = _PLACEHOLDER_ROOTS | (_TRANSCRIPT_ONLY if name == "transcript_url" else set())
            if (
                root not in allowed
                or (root in {"site", "page"} and len(parts) < 2)
                or (root not in {"site", "page"} and len(parts) > 1)
            ):
                known = ", ".join(f"{{{r}}}" for r in sorted(allowed - {"site", "page"}))
                problems.append(
                    ProblemData(
                        where,
                        "config",
                        f"{name} = {template!r}: unknown placeholder {{{m.group(1)}}}; "
                        f"use {{site.KEY}}, {{page.KEY}}, {known}",
                    )
                )
            elif root == "site" and _lookup(site.site, parts[1:]) in (None, ""):
                problems.append(
                    ProblemData(
                        where,
                        "config",
                        f"{name} = {template!r} needs '{'.'.join(parts[1:])}' from the site's "
                        "_config.yml, which does not set it: add it there or change the template",
                    )
                )
    return problems


def _expand(
    template: str, values: dict[str, Any], page: dict[str, Any], site: dict[str, Any]
) -> str:
    def sub(m: re.Match[str]) -> str:
        parts = m.group(1).split(".")
        if parts[0] == "site":
            value = _lookup(site, parts[1:])
        elif parts[0] == "page":
            value = _lookup(page, parts[1:])
        else:
            value = values.get(parts[0])
        if value is None or value == "":
            raise _Missing(m.group(0))
        return str(value)

    return _PLACEHOLDER.sub(sub, template)


# ---------------------------------------------------------------------------
# Scanning
# ---------------------------------------------------------------------------


@dataclass
class _PostContext:
    """What every post of one scan is parsed with; sent to the parser processes."""

    cfg: Any
    site: SiteInfo
    tz: ZoneInfo
    categories: frozenset[str]
    enclosure_template: str
    transcripts: dict[str, list[str]] | None
    limits: RenderLimits = field(default_factory=RenderLimits)
    should_stop: Callable[[], bool] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A worker process cannot ask this one whether to stop (nor pickle the callable):
        # there the render limits bound a post, and scan() checks should_stop between posts.
        return {**self.__dict__, "should_stop": None}


@dataclass
class _ReadJob:
    """One changed post file to read and parse (in this process or a worker)."""

    ctx: _PostContext
    path: str
    rel: str
    name: str
    ext: str
    dirs: tuple[str, ...]
    mtime_ns: int
    size: int
    old: FileStamp | None  # the stored stamp, to skip a touched file whose bytes are the same


@dataclass
class _Read:
    """What reading one file gave: its result (None: deleted since the listing), its
    problems (a bad file's one error, a good one's warnings) and whether it had audio
    fields but no enclosure template."""

    file: FileResult | None
    problems: list[ProblemData] = field(default_factory=list)
    audio_without_template: bool = False


def parse_pool(mode: Mode | None = None, workers: int | None = None) -> ParsePool:
    """Where a pass parses its changed posts: `mode` (default: $SYNDICATOR_PARSE_IN, else
    auto: in this process, or in a pool of `workers` processes, default the cores, once the
    pass has more than PROCESS_AFTER_BYTES of posts to read)."""
    return ParsePool(
        mode or mode_from_env(),
        auto_after_bytes=PROCESS_AFTER_BYTES,
        workers=workers,
        name="jekyll",
    )


def render_limits(cfg: JekyllSourceConfig) -> RenderLimits:
    """A source's Liquid limits (config keys max_render_seconds, _bytes, max_loop_iterations)."""
    return RenderLimits(
        seconds=cfg.max_render_seconds.total_seconds(),
        output_bytes=cfg.max_render_bytes,
        loop_iterations=cfg.max_loop_iterations,
    )


def scan(
    cfg: JekyllSourceConfig,
    known: dict[str, FileStamp],
    site: SiteInfo | None = None,
    *,
    tz: ZoneInfo | None = None,
    force: bool = False,
    on_parse: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    pool: ParsePool | None = None,
) -> ScanResult:
    """Walk the posts folder and report every post file; never raises for bad input.

    `known` maps relative paths to the stamps stored last time. A file whose
    (mtime_ns, size) match is "unchanged" and not read; one whose bytes hash the same
    is "same-hash". Others are parsed: "parsed" (with an episode), "ignored" (not a
    podcast post: another category, or not named like a post) or "bad" (one problem).
    `tz` is the podcast's time zone for naive dates. `force` re-parses everything
    (use it when `SiteInfo.fingerprint` changed). `on_parse(path)` is called after each
    file that had to be read (progress for a long cold scan). When `should_stop()`
    turns true (the daemon is shutting down) the scan raises RenderStopped, even in the
    middle of rendering a post: store nothing of it, the next pass reads it again.
    `pool` parses the changed files (in a process pool when there are many); without one,
    the scan makes its own (mode from $SYNDICATOR_PARSE_IN, default auto). Results do not
    depend on where posts were parsed.
    """
    tz = tz or ZoneInfo("UTC")
    if not Path(cfg.path).is_dir():
        # Said first: a missing site would otherwise read as a _config.yml lacking keys.
        what = "is not a folder" if Path(cfg.path).exists() else "does not exist"
        return ScanResult(
            problems=[
                ProblemData(
                    str(cfg.path),
                    "missing-folder",
                    f"the site folder {cfg.path} {what}: check `path` of source "
                    f"'{cfg.name}' (a relative path is taken from the config file's folder)",
                )
            ],
            complete=False,
        )
    site = site or load_site(cfg)
    if any(p.severity == "error" for p in site.problems):
        # A broken _config.yml would give wrong URLs and guids: read nothing this time.
        return ScanResult(problems=list(site.problems), complete=False)
    config_problems = _check_templates(cfg, site)
    if config_problems:
        return ScanResult(problems=[*site.problems, *config_problems], complete=False)
    result = ScanResult(problems=list(site.problems))

    if not site.posts_dir.is_dir():
        result.complete = False
        result.problems.append(
            ProblemData(
                _rel(site.posts_dir, site.root)
                if site.posts_dir != site.root
                else str(site.posts_dir),
                "missing-folder",
                f"the posts folder {site.posts_dir} does not exist or is not a folder: check "
                f"`path` of source '{cfg.name}' (a Jekyll site root or a folder of posts)",
            )
        )
        return result

    enclosure_template = cfg.enclosure_url or (
        "{site.mp3_url_path}{number}.mp3" if site.site.get("mp3_url_path") else ""
    )
    ctx = _PostContext(
        cfg=cfg,
        site=site,
        tz=tz,
        categories=frozenset(c.lower() for c in cfg.categories),
        enclosure_template=enclosure_template,
        transcripts=_list_transcripts(cfg, result.problems),
        limits=render_limits(cfg),
        should_stop=should_stop,
    )
    prefix = _rel(site.posts_dir, site.root)
    prefix = "" if prefix in ("", ".") else prefix + "/"
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[str, str, tuple[str, ...]]] = [(str(site.posts_dir), prefix, ())]
    files = result.files
    jobs: list[_ReadJob] = []  # changed files, in listing order: parsed after the walk
    while stack:
        dir_path, rel_prefix, dirs = stack.pop()
        try:
            st_dir = os.stat(dir_path)
            if (st_dir.st_dev, st_dir.st_ino) in seen_dirs:
                continue  # a symlink loop
            seen_dirs.add((st_dir.st_dev, st_dir.st_ino))
            with os.scandir(dir_path) as it:
                entries = list(it)
        except OSError as exc:
            # Without a full listing a missing file may just be unreadable: infer no deletions.
            result.complete = False
            result.problems.append(
                ProblemData(
                    rel_prefix.rstrip("/") or ".",
                    "read",
                    f"cannot list the folder: {exc.strerror or exc}; check permissions",
                )
            )
            continue
        for entry in entries:
            name = entry.name
            # Jekyll skips dotfiles, _private, #backups# and editor~ files.
            if name[0] in "._#" or name[-1] == "~":
                continue
            try:
                if entry.is_dir():
                    stack.append((entry.path, f"{rel_prefix}{name}/", (*dirs, name)))
                    continue
                ext = os.path.splitext(name)[1].lower()
                if ext not in POST_EXTS or not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue  # vanished between listing and stat: it is deleted
            rel = rel_prefix + name
            old = known.get(rel)
            if (
                not force
                and old is not None
                and old.mtime_ns == st.st_mtime_ns
                and old.size == st.st_size
            ):
                files.append(FileResult(rel, old, "unchanged"))
                continue
            jobs.append(
                _ReadJob(ctx, entry.path, rel, name, ext, dirs, st.st_mtime_ns, st.st_size,
                         None if force else old)
            )  # fmt: skip

    audio_without_template = 0
    noticed: set[tuple[str, str]] = set()  # (kind, message) of the notices already kept
    with contextlib.ExitStack() as owned:
        if pool is None:
            pool = owned.enter_context(parse_pool())
        # Results come back in the jobs' order whatever the mode, so problems and files
        # are recorded exactly as an in-process scan would.
        reads = pool.map(_read_post, jobs, [job.size for job in jobs])
        for job, read in zip(jobs, reads, strict=True):
            if should_stop is not None and should_stop():
                raise RenderStopped()
            if read.file is not None:
                files.append(read.file)
            result.problems.extend(_first_notices(noticed, read.problems))
            audio_without_template += read.audio_without_template
            if on_parse is not None:
                on_parse(job.rel)
    files.sort(key=lambda f: f.path)
    if audio_without_template:
        result.problems.append(
            ProblemData(
                f"source '{cfg.name}'",
                "config",
                f"{audio_without_template} episode(s) have mp3_bytes/mp3_duration but "
                "no enclosure URL can be built: set enclosure_url (e.g. "
                '"{site.url}/audio/{number}.mp3") or mp3_url_path in _config.yml',
                severity="warning",
            )
        )
    return result


def _list_transcripts(cfg: Any, problems: list[ProblemData]) -> dict[str, list[str]] | None:
    folder = getattr(cfg, "transcripts", None)
    if not folder:
        return None
    found: dict[str, list[str]] = {}
    try:
        with os.scandir(folder) as it:
            for entry in it:
                stem, _, ext = entry.name.rpartition(".")
                if ext.lower() in _TRANSCRIPT_TYPES and entry.is_file():
                    found.setdefault(stem, []).append(entry.name)
    except OSError as exc:
        problems.append(
            ProblemData(
                str(folder),
                "read",
                f"cannot list the transcripts folder: {exc.strerror or exc}",
                severity="warning",
            )
        )
        return None
    if found and not cfg.transcript_url:
        problems.append(
            ProblemData(
                f"source '{cfg.name}'",
                "config",
                "a transcripts folder is set but transcript_url is empty: set it, e.g. "
                '"{site.url}/transcripts/{transcript}"',
                severity="warning",
            )
        )
    return found


def _read_post(job: _ReadJob) -> _Read:
    """Read, hash and parse one changed file; never raises (a worker runs it)."""
    ctx, rel = job.ctx, job.rel
    limit = ctx.cfg.max_file_bytes
    if job.size > limit:
        return _bad(
            rel,
            FileStamp(job.mtime_ns, job.size, "", ok=False),
            _Bad(
                "too-large",
                f"the file is {job.size:,} bytes, over max_file_bytes "
                f"({limit:,}): shrink it or raise max_file_bytes for this source",
            ),
        )
    try:
        with open(job.path, "rb") as fh:
            raw = fh.read(limit + 1)
    except FileNotFoundError:
        return _Read(None)  # deleted since the listing
    except OSError as exc:
        return _bad(
            rel,
            FileStamp(job.mtime_ns, job.size, "", ok=False),
            _Bad("read", f"cannot read the file: {exc.strerror or exc}"),
        )
    digest = hashlib.sha256(raw).hexdigest()
    stamp = FileStamp(job.mtime_ns, job.size, digest)
    if len(raw) > limit:
        stamp.ok = False
        return _bad(
            rel,
            stamp,
            _Bad(
                "too-large",
                f"the file is over max_file_bytes ({limit:,}): shrink it or raise the limit",
            ),
        )
    old = job.old
    if old is not None and old.content_hash == digest:
        stamp.ok = old.ok
        return _Read(FileResult(rel, stamp, "same-hash"))
    try:
        episode, warnings, no_audio = _parse_post(ctx, raw, rel, job.name, job.ext, job.dirs)
    except _Bad as bad:
        stamp.ok = False
        return _bad(rel, stamp, bad)
    except RenderStopped:
        raise  # shutting down: not this file's fault
    except Exception as exc:  # one file must never stop the scan
        stamp.ok = False
        return _bad(
            rel,
            stamp,
            _Bad(
                "internal",
                f"could not parse the file ({type(exc).__name__}: {exc}); please report it",
            ),
        )
    if episode is None:
        return _Read(FileResult(rel, stamp, "ignored"))
    episode.file_hash = digest
    return _Read(FileResult(rel, stamp, "parsed", episode), warnings, no_audio)


def _first_notices(noticed: set[tuple[str, str]], problems: list[ProblemData]) -> list[ProblemData]:
    """Drop a notice already recorded this pass: a plugin tag in 100 posts is one notice."""
    kept = []
    for p in problems:
        if p.severity == "notice":
            if (p.kind, p.message) in noticed:
                continue
            noticed.add((p.kind, p.message))
        kept.append(p)
    return kept


def _bad(rel: str, stamp: FileStamp, bad: _Bad) -> _Read:
    problem = ProblemData(rel, bad.kind, bad.message, line=bad.line)
    return _Read(FileResult(rel, stamp, "bad"), [problem])


# ---------------------------------------------------------------------------
# One post
# ---------------------------------------------------------------------------


def _split_front_matter(text: str) -> tuple[str, str, int]:
    """(front matter YAML, body, line number of the body's first line)."""
    first_nl = text.find("\n")
    first = text if first_nl < 0 else text[:first_nl]
    if first.rstrip() != "---":
        raise _Bad(
            "front-matter",
            "no YAML front matter: a post must start with a line '---', then its fields "
            "(title: ..., category: ...), then a line '---'",
            1,
        )
    pos = first_nl + 1
    line_no = 2
    while pos <= len(text):
        nl = text.find("\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        if line.rstrip() in ("---", "..."):
            fm = text[first_nl + 1 : pos]
            body = "" if nl < 0 else text[nl + 1 :]
            return fm, body, line_no + 1
        if nl < 0:
            break
        pos = nl + 1
        line_no += 1
    raise _Bad(
        "front-matter",
        "the front matter opened on line 1 is never closed: add a line '---' after the last field",
        1,
    )


def _key_line(fm: str, key: str) -> int | None:
    """The file line of `key:` in the front matter (which starts on file line 2)."""
    m = re.search(rf"^{re.escape(key)}\s*:", fm, re.MULTILINE)
    return fm.count("\n", 0, m.start()) + 2 if m else None


def _load_yaml(fm: str, max_nodes: int) -> dict[str, Any]:
    try:
        data = load_bounded(fm, max_nodes)
    except YamlTooLarge as exc:
        raise _Bad(
            "yaml",
            f"the front matter is refused: {exc.message}; write the values out instead "
            "of nesting aliases, or raise max_yaml_nodes for this source",
            exc.line + 2 if exc.line is not None else None,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _Bad(
            "yaml",
            f"invalid YAML in the front matter: {_yaml_reason(exc)}; "
            "quote values that contain ': ' or start with special characters",
            mark.line + 2 if mark is not None else None,
        ) from None
    except (ValueError, OverflowError) as exc:
        # PyYAML builds dates itself: "2021-02-30" fails here, not as a YAMLError.
        line = None
        for m in re.finditer(
            r"^([\w-]+)\s*:\s*['\"]?(\d{4}-\d{1,2}-\d{1,2}[^'\"\n]*)", fm, re.MULTILINE
        ):
            try:
                _parse_date_str(m.group(2).strip(), ZoneInfo("UTC"))
            except ValueError:
                line = fm.count("\n", 0, m.start()) + 2
                break
        raise _Bad("date", f"invalid date in the front matter: {exc}", line) from None
    except RecursionError:
        raise _Bad("yaml", "the front matter nests too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _Bad(
            "front-matter",
            f"the front matter must be 'key: value' lines, not a {type(data).__name__}",
            2,
        )
    return data


def _parse_date_str(raw: str, tz: ZoneInfo) -> datetime:
    m = _DATE_STR.match(raw.strip())
    if not m:
        raise ValueError(f"{raw!r} is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS +ZZZZ")
    y, mo, d, hh, mm, ss, frac, off = m.groups()
    value = datetime(
        int(y),
        int(mo),
        int(d),
        int(hh or 0),
        int(mm or 0),
        int(ss or 0),
        int((frac or "0")[:6].ljust(6, "0")),
    )
    if off:
        if off == "Z":
            return value.replace(tzinfo=UTC)
        sign = -1 if off[0] == "-" else 1
        digits = off[1:].replace(":", "")
        minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
        return value.replace(tzinfo=timezone(sign * timedelta(minutes=minutes))).astimezone(UTC)
    return value.replace(tzinfo=tz).astimezone(UTC)


def _to_utc(value: Any, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=tz).astimezone(UTC)
    if isinstance(value, str):
        return _parse_date_str(value, tz)
    raise ValueError(f"{value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS +ZZZZ")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    s = " ".join(str(value).split())
    return s or None


def _words(value: Any) -> list[str]:
    """A YAML list or a space-separated string, as Jekyll reads tags and categories."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split()
    # A dict keeps the first of each in order, in linear time (a list's `in` is quadratic).
    out: dict[str, None] = {}
    for item in items:
        s = _text(item)
        if s:
            out.setdefault(s, None)
    return list(out)


def _handles(fm: dict[str, Any], prefix: str) -> dict[str, str]:
    """`<prefix>_<kind>` for every installed channel kind with handles, as that kind
    cleans a front matter value (e.g. a profile URL -> the handle)."""
    from syndicator.plugins import handle_kinds

    out: dict[str, str] = {}
    for kind in handle_kinds():
        s = _text(fm.get(f"{prefix}_{kind.name}"))
        if s and s != "#" and (h := kind.source_handle(s)):
            out[kind.name] = h
    return out


def _guests(fm: dict[str, Any]) -> list[Guest]:
    prefixes = [(0, "guest")]
    for key in fm:
        m = _GUEST_N.match(str(key))
        if m:
            prefixes.append((int(m.group(1)), f"guest_{m.group(1)}"))
    guests = []
    for _, prefix in sorted(prefixes):
        name = _text(fm.get(prefix))
        if not name:
            continue
        website = _text(fm.get(f"{prefix}_website"))
        # Jekyll puts front matter into HTML: `R&amp;D` there reads "R&D".
        guests.append(
            Guest(
                name=unescape_entities(name),
                handles=_handles(fm, prefix),
                website=None if website in (None, "#") else website,
                avatar=_text(fm.get(f"{prefix}_avatar")),
                title=unescape_entities(_text(fm.get(f"{prefix}_title")) or "") or None,
            )
        )
    return guests


def _explicit(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower() if value is not None else ""
    if s in ("yes", "true", "explicit", "1"):
        return True
    if s in ("no", "false", "clean", "0"):
        return False
    return None


def _title_from_slug(slug: str) -> str:
    m = _NUMBERED.match(slug)
    words = (m.group(2) if m else slug).replace("_", "-").split("-")
    return " ".join(w[:1].upper() + w[1:] for w in words if w)


def _parse_post(
    state: _PostContext,
    raw: bytes,
    rel: str,
    name: str,
    ext: str,
    dirs: tuple[str, ...],
) -> tuple[EpisodeData | None, list[ProblemData], bool]:
    """One post's bytes -> (episode or None when ignored, warnings, whether it has audio
    fields but no enclosure template to use); raises _Bad."""
    stem = name[: -len(ext)] if ext else name
    m = _POST_NAME.match(stem)
    if not m:
        return None, [], False  # Jekyll only builds YYYY-MM-DD-name files in _posts
    y, mo, d, slug = m.groups()
    try:
        file_date = date(int(y), int(mo), int(d))
    except ValueError as exc:
        raise _Bad(
            "date",
            f"the file name's date {y}-{mo}-{d} is not a valid date ({exc}): "
            "rename the file to YYYY-MM-DD-slug" + ext,
        ) from None

    if b"\x00" in raw:
        raise _Bad("binary", "the file contains NUL bytes: it is binary, not a text post")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _Bad(
            "encoding", f"not valid UTF-8 at byte {exc.start}: save the file as UTF-8", line
        ) from None
    text = fix_text(text.replace("\r\n", "\n"))

    fm_text, body, body_line = _split_front_matter(text)
    fm = _load_yaml(fm_text, state.cfg.max_yaml_nodes)
    tz, site = state.tz, state.site

    # `category` is one name (or a list); `categories` a list or space-separated names.
    cat = fm.get("category")
    categories = _words(cat) if isinstance(cat, list) else [c for c in [_text(cat)] if c]
    categories = list(dict.fromkeys([*categories, *_words(fm.get("categories"))]))
    if not categories:
        categories = list(dirs)  # `_posts/podcast/x.md` with no category: "podcast"
    if state.categories and not state.categories.intersection(c.lower() for c in categories):
        return None, [], False

    fm_slug = _text(fm.get("slug"))
    if fm_slug:
        slug = fm_slug
    nm = _NUMBERED.match(m.group(4))
    try:
        number = bounds.episode_number(nm.group(1)) if nm else None
    except bounds.OutOfRange as exc:
        raise _Bad(
            "range", f"the file name's {exc}; rename the file with the real episode number"
        ) from None

    if "date" in fm and fm["date"] not in (None, ""):
        try:
            when = _to_utc(fm["date"], tz)
        except (ValueError, OverflowError) as exc:
            raise _Bad("date", f"invalid date: {exc}", _key_line(fm_text, "date")) from None
    else:
        when = datetime.combine(file_date, time(), tzinfo=tz).astimezone(UTC)
    local = when.astimezone(tz)

    duration = None
    if fm.get("mp3_duration") not in (None, ""):
        try:
            duration = parse_duration_field(fm["mp3_duration"]) or None
        except bounds.OutOfRange as exc:
            raise _Bad(
                "range",
                f"mp3_duration: {exc}; write the real length as H:MM:SS",
                _key_line(fm_text, "mp3_duration"),
            ) from None
        except ValueError as exc:
            raise _Bad(
                "field", f"mp3_duration: {exc}", _key_line(fm_text, "mp3_duration")
            ) from None
    mp3_bytes = None
    if fm.get("mp3_bytes") not in (None, ""):
        value = fm["mp3_bytes"]
        s = str(value).strip().replace(",", "").replace("_", "")
        if isinstance(value, bool) or not s.isdigit():
            raise _Bad(
                "field",
                f'mp3_bytes: {value!r} is not a number of bytes (e.g. mp3_bytes: "98981760")',
                _key_line(fm_text, "mp3_bytes"),
            )
        try:
            mp3_bytes = bounds.enclosure_bytes(s)
        except bounds.OutOfRange as exc:
            raise _Bad(
                "range",
                f"mp3_bytes: {exc}; put the audio file's real size in bytes",
                _key_line(fm_text, "mp3_bytes"),
            ) from None

    title = _text(fm.get("title")) or _title_from_slug(slug)
    guests = _guests(fm)
    tags = _words(fm.get("tags")) or _words(fm.get("tag"))
    warnings: list[ProblemData] = []
    if len(tags) > bounds.MAX_TAGS:
        warnings.append(
            ProblemData(
                rel,
                "too-many-tags",
                f"{len(tags):,} tags; only the first {bounds.MAX_TAGS} are kept: "
                "shorten the post's tags list",
                _key_line(fm_text, "tags") or _key_line(fm_text, "tag"),
                severity="warning",
            )
        )
        tags = tags[: bounds.MAX_TAGS]

    avatar = guests[0].avatar if guests else None
    values: dict[str, Any] = {
        "slug": slug,
        "number": number,
        "year": f"{local.year:04d}",
        "month": f"{local.month:02d}",
        "day": f"{local.day:02d}",
        "title_slug": slugify(title),
        "guest_avatar": _IMAGE_EXT.sub("", avatar) if avatar else None,
    }
    cfg = state.cfg
    page_vars = fm  # {page.X} in templates: the front matter as written
    try:
        guid = _expand(cfg.guid, values, page_vars, site.site)
    except _Missing as miss:
        raise _Bad(
            "guid",
            f"the guid template {cfg.guid!r} needs {miss}, which this post "
            "lacks (a number comes from a file name like 2021-12-20-107-slug.md)",
        ) from None
    url = None
    try:
        url = _expand(cfg.episode_url, values, page_vars, site.site)
    except _Missing as miss:
        warnings.append(
            ProblemData(
                rel,
                "url",
                f"no episode URL: the template {cfg.episode_url!r} needs {miss}",
                severity="warning",
            )
        )

    enclosure = None
    no_audio = False
    if mp3_bytes is not None or duration is not None:
        if not state.enclosure_template:
            no_audio = True
        else:
            try:
                enclosure = Enclosure(
                    url=_expand(state.enclosure_template, values, page_vars, site.site),
                    length=mp3_bytes,
                    type=cfg.enclosure_type,
                )
            except _Missing as miss:
                warnings.append(
                    ProblemData(
                        rel,
                        "enclosure",
                        f"the episode has audio fields but the enclosure "
                        f"template {state.enclosure_template!r} needs {miss}: no audio in the feed",
                        severity="warning",
                    )
                )

    image = None
    fm_image = fm.get("image")
    if isinstance(fm_image, str) and fm_image.strip():
        image = urljoin(str(site.site.get("url") or "") + "/", fm_image.strip())
    elif cfg.image_url:
        try:
            image = _expand(cfg.image_url, values, page_vars, site.site)
        except _Missing:
            image = None  # e.g. no guest avatar: the feed falls back to the show's image

    transcript_url = transcript_type = None
    if state.transcripts and number is not None and cfg.transcript_url:
        names = state.transcripts.get(str(number), [])
        for kind in _TRANSCRIPT_TYPES:
            match = next((n for n in names if n.rsplit(".", 1)[1].lower() == kind), None)
            if match:
                try:
                    transcript_url = _expand(
                        cfg.transcript_url,
                        {**values, "ext": kind, "transcript": match},
                        page_vars,
                        site.site,
                    )
                    transcript_type = _TRANSCRIPT_TYPES[kind]
                except _Missing:
                    pass
                break

    withdrawn, reason = False, None
    if fm.get("under_review") is True:
        withdrawn, reason = True, "under review (under_review: true)"
    elif fm.get("published") is False:
        withdrawn, reason = True, "unpublished (published: false)"

    episode_type = "full"
    for key in ("episode_type", "itunes_episode_type", "type"):
        value = _text(fm.get(key))
        if value and value.lower() in ("full", "trailer", "bonus"):
            episode_type = value.lower()
            break

    # Jekyll's page object: the front matter plus what Jekyll computes.
    page = dict(fm)
    page.setdefault("title", title)
    page["date"] = local
    page.setdefault("slug", slug)
    page.setdefault("categories", categories)
    page.setdefault("tags", tags)
    page.setdefault("path", rel)
    if url:
        page.setdefault("url", urlsplit(url).path or "/")

    description = _text(fm.get("description")) or ""
    if "{" in description:
        rendered, probs = render_liquid(
            description,
            page,
            site.site,
            site.includes_dir,
            rel,
            line_offset=(_key_line(fm_text, "description") or 1) - 1,
            limits=state.limits,
            should_stop=state.should_stop,
            ignore_tags=state.cfg.ignore_tags,
        )
        if any(p.severity == "error" for p in probs):
            p = next(p for p in probs if p.severity == "error")
            raise _Bad(p.kind, f"description: {p.message}", p.line)
        description = " ".join(rendered.split())
        warnings.extend(probs)

    rendered_body, probs = render_liquid(
        body, page, site.site, site.includes_dir, rel, line_offset=body_line - 1,
        limits=state.limits, should_stop=state.should_stop, ignore_tags=state.cfg.ignore_tags,
    )  # fmt: skip
    errors = [p for p in probs if p.severity == "error"]
    if errors:
        raise _Bad(errors[0].kind, errors[0].message, errors[0].line)
    warnings.extend(probs)
    show_notes = markdown_to_html(rendered_body) if ext in MARKDOWN_EXTS else rendered_body
    chapters: list[Chapter] = []
    if ext in MARKDOWN_EXTS:
        chapters, probs = read_chapters(rendered_body, rel, source=body, line_offset=body_line - 1)
        warnings.extend(probs)

    episode = EpisodeData(
        title=unescape_entities(title),
        date=when,
        guid=guid,
        key=None,
        number=number,
        slug=slug,
        path=rel,
        url=url,
        guests=guests,
        tags=tags,
        categories=categories,
        enclosure=enclosure,
        duration_seconds=duration,
        description=unescape_entities(description),
        show_notes_html=show_notes,
        chapters=chapters,
        image=image,
        transcript_url=transcript_url,
        transcript_type=transcript_type,
        explicit=_explicit(fm.get("explicit")) if "explicit" in fm else None,
        episode_type=episode_type,
        withdrawn=withdrawn,
        withdrawn_reason=reason,
        image_alt=_text(fm.get("image_alt")),
    )
    return clean_episode(episode), warnings, no_audio


class JekyllKind:
    """The `jekyll` source kind (entry point "syndicator.sources"): posts read from disk."""

    type = "jekyll"
    order = 10  # local reads before network polls
    scheduled = False  # read every pass: an unchanged post costs one stat

    def poll(self, jobs: Sequence[PollJob], ctx: PollContext) -> Iterator[Polled]:
        # One pool for the pass: it starts at most once, when the pass has much to parse.
        with parse_pool() as pool:
            yield from self._poll(jobs, ctx, pool)

    def _poll(self, jobs: Sequence[PollJob], ctx: PollContext, pool: ParsePool) -> Iterator[Polled]:
        for job in jobs:
            src = job.config
            ctx.progress.step(f"reading {src.name} ({src.path})")
            try:
                site = load_site(src)
                # _config.yml, includes or the source's templates changed: every post may
                # render differently, so parse them all again.
                reparse = job.known.fingerprint != site.fingerprint
                result = scan(
                    src, job.known.files, site, tz=ctx.tz,
                    force=reparse and bool(job.known.files),
                    on_parse=lambda _path: ctx.progress.advance(), should_stop=ctx.should_stop,
                    pool=pool,
                )  # fmt: skip
            except RenderStopped:
                log.warning("source %s: reading stopped for shutdown", src.name)
                raise
            except Exception as exc:  # a source must never take the pass down
                log.exception("source %s failed", src.name)
                yield Polled(job, str(src.path), error=f"{type(exc).__name__}: {exc}")
                continue
            yield Polled(job, str(src.path), result, fingerprint=site.fingerprint)
