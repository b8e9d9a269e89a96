"""Announcement text: Jinja2 templates rendered in the sandbox, then fitted to the network.

Templates are looked up by file name in the user's folder (`announce.templates`) first, then
in the shipped `templates/announce/`. A shipped template stays reachable as
`shipped/<name>` so a user's template can `{% extends "shipped/twitter.j2" %}`.

Which template: kind "announce" uses `channel.template` or `<type>.j2`; any other kind
(e.g. "reshare") uses `channel.evergreen.template` for reshares, else `<kind>_<type>.j2`,
else `<kind>.j2`. A name without a suffix also matches `<name>.j2`.

The context (every key is always present; a missing value is "" so StrictUndefined only
catches typos):

    network, channel, kind
    title, url, number, date (aware, podcast time zone), date_iso, description,
    duration ("1h 43m"), duration_seconds, tags
    headline      "Title, with @a and @b." / "Title." - title plus guests, ready to print
    guests        [{name, twitter, mastodon, bluesky, website, avatar, title, mention}]
    guests_text   guests as this network mentions them: "@a", "@a and @b", "@a, B and @c"
    guest_names   the same with plain names
    guest, guest_twitter, guest_mastodon, guest_bluesky   the first guest
    host          {name, twitter, mastodon, bluesky, website, avatar, mention}
    podcast       {title, description, link, feed_url, image, author, language, ...}
    hashtags      ["meteor", "LetsEncrypt"] (no '#'), hashtags_text "#meteor #LetsEncrypt"
    episode       {title, full_title, url, number, date, date_iso, description,
                   full_description, tags, categories, duration, duration_seconds, guid,
                   image, source, slug}

Handles: twitter is bare ("filipenevola"), mastodon "@user@instance", bluesky
"name.bsky.social"; `mention` carries the network's form, or the plain name when the guest
has no usable handle there. The config's [handles] table (guest name -> {twitter, mastodon,
bluesky}) wins over the episode's own values; "" there removes a handle.

Fitting re-renders the same template with less: hashtags dropped from the end, then the
description shortened, then the title, each at a word boundary with "…".
"""

from __future__ import annotations

import re
import traceback
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

import syndicator
from syndicator.announce import fit
from syndicator.announce.hashtags import hashtag_for, make_hashtags
from syndicator.config import ChannelConfig, Settings

if TYPE_CHECKING:
    from syndicator.channels.kind import ChannelKind


class TemplateProblem(Exception):
    """A template that cannot be found, compiled or rendered: which one, where, why."""

    def __init__(
        self, template: str, line: int | None, message: str, path: str | None = None
    ) -> None:
        self.template = template
        self.line = line
        self.message = message
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or self.template
        if self.line:
            where = f"{where}, line {self.line}"
        return f"template {where}: {self.message}"


@dataclass
class Rendered:
    text: str
    length: int  # as the network counts it
    limit: int
    fits: bool
    template: str  # the file name that was rendered
    network: str = ""
    path: str | None = None  # where that file was found
    adjustments: list[str] = field(default_factory=list)  # what fitting changed, in order


def shipped_templates_dir() -> Path:
    """The shipped announcement templates: inside the wheel, else the source tree."""
    pkg = Path(syndicator.__file__).parent
    for base in (pkg / "_templates", pkg.parent / "templates"):
        if (base / "announce").is_dir():
            return base / "announce"
    return pkg.parent / "templates" / "announce"


# --- handles ---------------------------------------------------------------------------------


def _handle_kinds() -> dict[str, ChannelKind]:
    """The installed kinds whose guests have handles, by name."""
    from syndicator.plugins import handle_kinds

    return {k.name: k for k in handle_kinds()}


def _kind_templates(network: str | None = None) -> list[Path]:
    """The folders kinds ship their default templates in (`network`'s only, when given)."""
    from syndicator.plugins import kinds

    found = kinds()
    chosen = list(found.values()) if network is None else [found[network]] * (network in found)
    return [k.templates for k in chosen if k.templates is not None]


def _table_key(key: str) -> str:
    """A [handles] key as a kind's name (a kind's alias, e.g. "x", counts as its name)."""
    from syndicator.plugins import kind

    try:
        return kind(key).name
    except KeyError:
        return key


def join_names(names: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    items = [n for n in names if n]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _name_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _table_entry(table: Mapping[str, Mapping[str, str]], name: str) -> Mapping[str, str]:
    if not name:
        return {}
    if name in table:
        return table[name]
    key = _name_key(name)
    for k, v in table.items():
        if _name_key(k) == key:
            return v
    return {}


def _person(
    raw: Mapping[str, Any], table: Mapping[str, Mapping[str, str]], network: str
) -> dict[str, Any]:
    name = " ".join(str(raw.get("name") or "").split())
    entry = {_table_key(k): v for k, v in _table_entry(table, name).items()}
    own_handles = raw.get("handles") if isinstance(raw.get("handles"), Mapping) else {}
    person: dict[str, Any] = {
        "name": name,
        "website": str(raw.get("website") or ""),
        "avatar": str(raw.get("avatar") or ""),
        "title": str(raw.get("title") or ""),
    }
    handles: dict[str, str] = {}
    for net, k in _handle_kinds().items():
        # The table is the operator's word: it wins, and "" there removes a handle.
        value = entry[net] if net in entry else own_handles.get(net, raw.get(net))
        handles[net] = person[net] = k.handle(value)
    person["handles"] = handles
    k = _handle_kinds().get(network)
    own = k.mention_for(person[network], name) if k is not None else ""
    person["mention"] = own or name
    return person


def _guest_dicts(guests: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for g in guests or []:
        if isinstance(g, Mapping):
            out.append(dict(g))
        elif hasattr(g, "to_dict"):
            out.append(g.to_dict())
        else:
            out.append({k: getattr(g, k, None) for k in ("name", "handles", "website")})
    return out


# --- small formatting helpers ----------------------------------------------------------------


def human_duration(seconds: int | float | None) -> str:
    """6186 -> "1h 43m"; 2400 -> "40m"; 45 -> "45s"; unknown -> ""."""
    if not seconds or seconds <= 0:
        return ""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours and minutes:
        return f"{hours}h {minutes}m"
    return f"{hours}h" if hours else f"{minutes}m"


def headline(title: str, guests_text: str) -> str:
    """The title as a sentence, with its guests: "Title, with @a and @b." / "Title."."""
    t = title.strip()
    if not guests_text:
        return t if not t or t.endswith((".", "?", "!", "…")) else t + "."
    if not t:
        return f"With {guests_text}."
    if t.endswith(("?", "!")):
        return f"{t} With {guests_text}."
    if t.endswith("…"):
        return f"{t} with {guests_text}."
    return f"{t.rstrip('.')}, with {guests_text}."


def _clean_text(text: Any) -> str:
    s = str(text or "").replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"\n{3,}", "\n\n", s).strip()


def _tidy(text: str) -> str:
    # Templates decide the layout; this only removes what conditionals leave behind.
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _filter_hashtag(tag: str) -> str:
    text = hashtag_for(tag)
    return "#" + text if text else ""


# --- the renderer ----------------------------------------------------------------------------


@dataclass
class _Parts:
    """What a context is made of; fitting varies title, description and hashtags only."""

    network: str
    channel: str
    kind: str
    episode: dict[str, Any]
    title: str
    description: str
    hashtags: list[str]
    guests: list[dict[str, Any]]
    host: dict[str, Any]
    podcast: dict[str, Any]
    show: dict[str, Any]  # the episode's show (a remote feed's, else this podcast's)


class Renderer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.user_dir: Path | None = settings.announce.templates
        self.shipped_dir = shipped_templates_dir()
        loaders: list[Any] = []
        if self.user_dir is not None:
            loaders.append(FileSystemLoader(str(self.user_dir)))
        shipped = FileSystemLoader(str(self.shipped_dir))
        loaders += [shipped, PrefixLoader({"shipped": shipped})]
        # then the templates third-party channel kinds ship in their own packages
        loaders += [FileSystemLoader(str(d)) for d in _kind_templates()]
        # Immutable sandbox: templates are user input; they may read the context, not change
        # it or reach Python internals. Autoescape off: the output is plain text, not HTML.
        self.env = ImmutableSandboxedEnvironment(
            loader=ChoiceLoader(loaders),
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["join_names"] = join_names
        self.env.filters["hashtag"] = _filter_hashtag

    # -- templates

    def template_names(self, channel: ChannelConfig, kind: str = "announce") -> list[str]:
        """The file names tried for this channel and kind, best first."""
        if kind == "announce":
            names = [channel.template] if channel.template else [f"{channel.type}.j2"]
        elif kind == "reshare" and channel.evergreen.template:
            names = [channel.evergreen.template]
        elif kind == "thread" and channel.thread_template:
            names = [channel.thread_template]
        else:
            names = [f"{kind}_{channel.type}.j2", f"{kind}.j2"]
        out: list[str] = []
        for n in names:
            out.append(n)
            if not Path(n).suffix:
                out.append(n + ".j2")
        return out

    def _dirs(self) -> list[Path]:
        return [d for d in (self.user_dir, self.shipped_dir) if d is not None]

    def resolve(self, channel: ChannelConfig, kind: str = "announce") -> tuple[str, Path]:
        """Which template file this channel uses: (name, path). The user's folder wins."""
        names = self.template_names(channel, kind)
        if self.user_dir is not None and not self.user_dir.is_dir():
            raise TemplateProblem(
                names[0],
                None,
                f"the templates folder {self.user_dir} (announce.templates) does not exist; "
                "create it or remove the setting",
            )
        for d in self._dirs() + _kind_templates(channel.type):
            for name in names:
                try:
                    parts = split_template_path(name)
                except TemplateNotFound:
                    raise TemplateProblem(
                        name, None, "use a plain file name, without '..'"
                    ) from None
                path = d.joinpath(*parts)
                if path.is_file():
                    return name, path
        looked = " or ".join(str(d) for d in self._dirs())
        raise TemplateProblem(
            names[0],
            None,
            f"no such template in {looked} (channel {channel.name!r}); "
            "check the file name or create the file",
        )

    def load(self, name: str, path: Path | None = None) -> Template:
        try:
            return self.env.get_template(name)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(
                name, exc.lineno, exc.message or str(exc), exc.filename or _str(path)
            ) from exc
        except TemplateNotFound as exc:
            raise TemplateProblem(
                name, None, f"includes a template that does not exist: {exc.name}", _str(path)
            ) from exc
        except TemplateError as exc:
            raise TemplateProblem(name, None, str(exc), _str(path)) from exc

    # -- context

    def _parts(self, episode: Any, channel: ChannelConfig, kind: str) -> _Parts:
        network = channel.type
        settings = self.settings
        table = settings.handles
        tz = settings.podcast.tz
        guests = []
        for raw in _guest_dicts(getattr(episode, "guests", None)):
            person = _person(raw, table, network)
            if person["name"] or person["mention"]:
                guests.append(person)
        host_cfg = settings.podcast.host
        host = _person(host_cfg.model_dump(), table, network)
        date = getattr(episode, "date", None)
        if isinstance(date, datetime):
            date = (date if date.tzinfo else date.replace(tzinfo=UTC)).astimezone(tz)
        else:
            date = None
        seconds = getattr(episode, "duration_seconds", None)
        title = " ".join(str(getattr(episode, "title", "") or "").split())
        description = _clean_text(getattr(episode, "description", ""))
        tags = [t for t in (getattr(episode, "tags", None) or []) if isinstance(t, str)]
        number = getattr(episode, "number", None)
        ep = {
            "title": title,
            "full_title": title,
            "url": str(getattr(episode, "url", "") or ""),
            "number": number if number is not None else "",
            "date": date if date is not None else "",
            "date_iso": date.date().isoformat() if date is not None else "",
            "description": description,
            "full_description": description,
            "tags": list(tags),
            "categories": list(getattr(episode, "categories", None) or []),
            "duration": human_duration(seconds),
            "duration_seconds": seconds or 0,
            "guid": str(getattr(episode, "guid", "") or ""),
            "image": str(getattr(episode, "image", "") or ""),
            "source": str(getattr(episode, "source", "") or ""),
            "slug": str(getattr(episode, "slug", "") or ""),
        }
        p = settings.podcast
        podcast = {
            "title": p.title,
            "description": p.description,
            "link": p.link,
            "feed_url": p.feed_url,
            "image": p.image,
            "author": p.author,
            "language": p.language,
            "funding_url": p.funding_url,
            "funding_text": p.funding_text,
            "timezone": p.timezone,
        }
        hashtags = make_hashtags(tags, settings.announce.hashtags, settings.announce.max_hashtags)
        return _Parts(
            network=network,
            channel=channel.name,
            kind=kind,
            episode=ep,
            title=title,
            description=description,
            hashtags=hashtags,
            guests=guests,
            host=host,
            podcast=podcast,
            show=_show(episode, podcast),
        )

    @staticmethod
    def _assemble(
        parts: _Parts,
        *,
        title: str | None = None,
        description: str | None = None,
        hashtags: list[str] | None = None,
    ) -> dict[str, Any]:
        title = parts.title if title is None else title
        description = parts.description if description is None else description
        tags = parts.hashtags if hashtags is None else hashtags
        ep = dict(parts.episode, title=title, description=description)
        guests_text = join_names(g["mention"] for g in parts.guests)
        first = parts.guests[0] if parts.guests else {}
        return {
            "network": parts.network,
            "channel": parts.channel,
            "kind": parts.kind,
            "episode": ep,
            "title": title,
            "url": ep["url"],
            "number": ep["number"],
            "date": ep["date"],
            "date_iso": ep["date_iso"],
            "description": description,
            "duration": ep["duration"],
            "duration_seconds": ep["duration_seconds"],
            "tags": ep["tags"],
            "guests": parts.guests,
            "guests_text": guests_text,
            "guest_names": join_names(g["name"] or g["mention"] for g in parts.guests),
            "guest": first.get("name", ""),
            **{f"guest_{net}": first.get(net, "") for net in _handle_kinds()},
            "host": parts.host,
            "podcast": parts.podcast,
            "show": parts.show,
            "hashtags": list(tags),
            "hashtags_text": " ".join("#" + t for t in tags),
            "headline": headline(title, guests_text),
        }

    def context(
        self, episode: Any, channel: ChannelConfig, *, kind: str = "announce"
    ) -> dict[str, Any]:
        """The full (unfitted) template context for this episode on this channel."""
        return self._assemble(self._parts(episode, channel, kind))

    # -- rendering

    def _run(self, template: Template, name: str, path: Path | None, ctx: dict[str, Any]) -> str:
        try:
            return _tidy(template.render(ctx))
        except Exception as exc:  # a user's template can fail in any way; say where
            raise TemplateProblem(
                name, _template_line(exc, template), _describe(exc), _str(path)
            ) from exc

    def render_text(
        self, episode: Any, channel: ChannelConfig, *, kind: str, extra: dict[str, Any]
    ) -> str:
        """Render without fitting, with `extra` added to the context (reply threads fit
        each reply on its own: announce/thread.py)."""
        name, path = self.resolve(channel, kind)
        template = self.load(name, path)
        return self._run(
            template, name, path, {**self.context(episode, channel, kind=kind), **extra}
        )

    def render(
        self,
        episode: Any,
        channel: ChannelConfig,
        *,
        kind: str = "announce",
        limit: int | None = None,
    ) -> Rendered:
        """Render and fit. `limit` is what the network reported (e.g. a Mastodon instance's
        max_characters); `channel.limit` overrides it; else the network's default."""
        network = channel.type
        lim = channel.limit or limit or fit.default_limit(network)
        name, path = self.resolve(channel, kind)
        template = self.load(name, path)
        parts = self._parts(episode, channel, kind)
        adjustments: list[str] = []

        def attempt(**over: Any) -> tuple[str, int]:
            text = self._run(template, name, path, self._assemble(parts, **over))
            return text, fit.count(text, network)

        def done(text: str, n: int) -> Rendered:
            return Rendered(text, n, lim, n <= lim, name, network, str(path), adjustments)

        text, n = attempt()
        if n <= lim:
            return done(text, n)

        # 1. hashtags, from the end
        tags = parts.hashtags
        for k in range(len(tags) - 1, -1, -1):
            text, n = attempt(hashtags=tags[:k])
            if n <= lim:
                adjustments.append(f"dropped {len(tags) - k} hashtag(s)")
                return done(text, n)
        if tags:
            adjustments.append(f"dropped {len(tags)} hashtag(s)")

        # 2. the description, when the template shows it
        description = parts.description
        if description:
            no_desc, n0 = attempt(hashtags=[], description="")
            if no_desc != text:
                cuts = fit.word_cuts(description, allow_empty=True)
                best = fit.longest(
                    len(cuts), lambda i: attempt(hashtags=[], description=cuts[i])[1] <= lim
                )
                if best is not None:
                    adjustments.append(
                        "shortened the description" if best else "dropped the description"
                    )
                    return done(*attempt(hashtags=[], description=cuts[best]))
                adjustments.append("dropped the description")
            text, n, description = no_desc, n0, ""

        # 3. the title
        title = parts.title
        for cuts in (fit.word_cuts(title), fit.grapheme_cuts(title)):
            best = fit.longest(
                len(cuts),
                lambda i, c=cuts: (
                    attempt(hashtags=[], description=description, title=c[i])[1] <= lim
                ),
            )
            if best is not None:
                adjustments.append("shortened the title")
                return done(*attempt(hashtags=[], description=description, title=cuts[best]))

        # Nothing fits: hand back the shortest version so a person can see why.
        for cuts in (fit.word_cuts(title), fit.grapheme_cuts(title)):
            if len(cuts):
                adjustments.append("shortened the title")
                text, n = attempt(hashtags=[], description=description, title=cuts[0])
                break
        return done(text, n)

    def check(self) -> list[TemplateProblem]:
        """Load and trial-render every template the configured channels use (for `check`)."""
        problems: list[TemplateProblem] = []
        sample = sample_episode()
        for channel in self.settings.channels:
            kinds = ["announce"] + (["reshare"] if channel.evergreen.enabled else [])
            for kind in kinds:
                try:
                    self.render(sample, channel, kind=kind)
                except TemplateProblem as exc:
                    problems.append(exc)
            if channel.thread or channel.thread_template:  # the reply thread's template
                chapters = [{"start": 0, "time": "0:00", "title": "Intro", "url": ""}]
                try:
                    self.render_text(sample, channel, kind="thread", extra={"chapters": chapters})
                except TemplateProblem as exc:
                    problems.append(exc)
        return problems


def _show(episode: Any, podcast: dict[str, Any]) -> dict[str, Any]:
    """The episode's show: a remote feed's own (store/shows.py) when the episode is a
    stored row from one, else this podcast's, so `{{ show.title }}` always has a value."""
    from sqlalchemy.orm import object_session

    from syndicator.store import shows
    from syndicator.store.views import show_dict

    s = object_session(episode) if hasattr(episode, "_sa_instance_state") else None
    source = str(getattr(episode, "source", "") or "")
    found = show_dict(shows.get(s, source)) if s is not None and source else None
    if found is not None:
        return found
    own = {name: "" for name in shows.FIELDS}
    own.update(categories=[], funding=[], value={}, locked=None, podcast_guid=None)
    own.update({k: podcast[k] for k in ("title", "description", "link", "image", "author")})
    own["language"] = podcast["language"]
    return own


def sample_episode() -> Any:
    """A made-up episode for trial renders and previews of templates."""
    return SimpleNamespace(
        title="A sample episode title",
        url="https://example.com/episodes/1",
        number=1,
        date=datetime(2024, 1, 15, 9, 0, tzinfo=UTC),
        description="What the episode is about, in a sentence or two.",
        tags=["sample", "two-words"],
        categories=[],
        duration_seconds=3723,
        # "sample" on every kind with handles: those where it is a valid handle mention it
        guests=[{"name": "Sample Guest", **dict.fromkeys(_handle_kinds(), "sample")}],
        guid="sample-1",
        image="",
        source="sample",
        slug="sample",
    )


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _describe(exc: BaseException) -> str:
    from jinja2.exceptions import SecurityError, UndefinedError

    if isinstance(exc, TemplateNotFound):
        return f"includes a template that does not exist: {exc.name}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, UndefinedError):
        return f"{exc} (see the list of variables in syndicator/announce/render.py)"
    return f"{type(exc).__name__}: {exc}"


def _template_line(exc: BaseException, template: Template) -> int | None:
    """The template line an error was raised on (Jinja rewrites tracebacks to point there)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    names = {template.filename, "<template>"} - {None}
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename in names:
            line = frame.lineno
    if line is None:
        # An error inside an included template: the last frame of any template file.
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.endswith(".j2"):
                line = frame.lineno
    return line
