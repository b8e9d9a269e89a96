"""`syndicator check`: validate the config and read every source, changing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syndicator.config import Settings, secret
from syndicator.sources.base import PollResult, ProblemData, ScanResult


def check_all(settings: Settings) -> tuple[list[ProblemData], list[str]]:
    """Every problem found, and a line of notes per source. Nothing is written."""
    from syndicator.progress import NoProgress
    from syndicator.sources.kinds import PollContext, Polled, PollJob, load_kinds

    problems: list[ProblemData] = []
    notes: list[str] = []
    # every enabled source, read by its kind as if for the first time (nothing known)
    ctx = PollContext(settings.podcast.tz, settings.fetch, NoProgress())
    read: dict[str, Polled] = {}
    for kind in load_kinds():
        jobs = [PollJob(s) for s in settings.sources if s.enabled and s.type == kind.type]
        read.update((p.job.config.name, p) for p in kind.poll(jobs, ctx))
    # notes as before: disabled and post folders in config order, then the feeds
    for src in settings.sources:
        polled = read.get(src.name)
        if not src.enabled:
            notes.append(f"{src.name}: disabled")
        elif polled is not None and polled.result is None:
            notes.append(f"{src.name}: could not be read: {polled.error}")
            problems.append(ProblemData(polled.location, "source", polled.error or "unreadable"))
        elif polled is not None and isinstance(polled.result, ScanResult):
            result = polled.result
            eps = [f for f in result.files if f.episode is not None]
            notes.append(f"{src.name}: {len(result.files)} post(s), {len(eps)} episode(s)")
            problems.extend(_prefixed(src.name, polled.location, result.problems))
    for src in settings.sources:
        polled = read.get(src.name)
        if src.enabled and polled is not None and isinstance(polled.result, PollResult):
            res = polled.result
            notes.append(f"{src.name}: {res.status}, {len(res.episodes)} item(s)")
            problems.extend(res.problems)
    problems.extend(_check_enclosures(settings, read))
    problems.extend(_check_channels(settings))
    problems.extend(_check_templates(settings))
    stored_problems, stored_notes = _check_stored(settings)
    problems.extend(stored_problems)
    notes.extend(stored_notes)
    return problems, notes


def _check_stored(settings: Settings) -> tuple[list[ProblemData], list[str]]:
    """What only the store knows: the stored sources' names (a feed's `sources` may name
    them) and how many there are. The store is read as it is, never created or migrated."""
    from syndicator.config import unknown_source_message
    from syndicator.store import source_rows
    from syndicator.store.db import open_current, session

    unknown = {f.name: settings.feed_sources_outside_config(f) for f in settings.feeds}
    try:
        engine = open_current(settings.database.url)
    except Exception as exc:  # unreachable server, unreadable file: say so, go on
        note = f"stored sources not checked: the database could not be read ({exc})"
        problems = [ProblemData("[database] url", "store", note, severity="warning")]
        return problems, []
    total = 0  # no store yet: no stored source, every name outside the config is unknown
    if engine is not None:
        with session(engine) as s:
            unknown = {feed: source_rows.not_stored(s, names) for feed, names in unknown.items()}
            total = source_rows.count(s)
    problems = [
        ProblemData(f"[[feeds]] {feed}", "config", unknown_source_message(feed, n))
        for feed, names in unknown.items()
        for n in names
    ]
    notes = []
    if total:
        notes.append(
            f"{total} stored source(s) (from `syndicator sources import|add`): not read by "
            "check; `syndicator sources list` shows them and `run-once` polls them"
        )
    return problems, notes


def _check_enclosures(settings: Settings, read: dict[str, Any]) -> list[ProblemData]:
    """The newest enclosures of each source answer, with the right size and byte ranges
    (Apple Podcasts needs them): a missing mp3 is found before it is announced."""
    from syndicator.sources.enclosure import CHECK_NEWEST, enclosure_problems

    items: list[tuple[str, str, int | None]] = []
    quiet = {s.name for s in settings.sources if not s.verify_audio}  # never asked
    for name, polled in read.items():
        if name in quiet:
            continue
        if isinstance(polled.result, ScanResult):
            eps = [f.episode for f in polled.result.files if f.episode is not None]
        elif isinstance(polled.result, PollResult):
            eps = list(polled.result.episodes)
        else:
            continue
        live = [e for e in eps if e.enclosure is not None and not e.withdrawn]
        live.sort(key=lambda e: e.date or datetime.min.replace(tzinfo=UTC), reverse=True)
        for e in live[:CHECK_NEWEST]:
            assert e.enclosure is not None
            items.append((f"{name}: episode {e.title!r}", e.enclosure.url, e.enclosure.length))
    return enclosure_problems(items, allow_private=settings.fetch.allow_private_redirects)


def _check_templates(settings: Settings) -> list[ProblemData]:
    """Trial-render every template the channels use, with a sample episode."""
    from syndicator.announce.render import Renderer, TemplateProblem

    try:
        found = Renderer(settings).check()
    except TemplateProblem as exc:  # e.g. the templates folder itself is missing
        found = [exc]
    return [ProblemData(p.path or p.template, "template", p.message, p.line) for p in found]


def _prefixed(name: str, root: str, items: list[ProblemData]) -> list[ProblemData]:
    out = []
    for p in items:
        loc = p.location if p.location.startswith("/") else f"{root}/{p.location}"
        out.append(ProblemData(loc, p.kind, p.message, p.line, p.severity))
    return out


def _check_channels(settings: Settings) -> list[ProblemData]:
    from syndicator.channels.registry import make_channel

    out = []
    for ch in settings.channels:
        if not ch.enabled or ch.dry_run:
            continue
        try:
            make_channel(ch).close()
        except Exception as exc:
            out.append(
                ProblemData(f"channel {ch.name}", "channel", getattr(exc, "message", str(exc)))
            )
    for feed in settings.feeds:
        if not (feed.url or settings.podcast.feed_url):
            out.append(
                ProblemData(
                    f"feed {feed.name}", "config",
                    "no feed URL: set [podcast] feed_url or the feed's url",
                )
            )  # fmt: skip
        if feed.podping and not secret("podping", "token"):
            out.append(
                ProblemData(
                    f"feed {feed.name}", "config",
                    "podping = true needs the podping.cloud publisher token: export "
                    "SYNDICATOR_PODPING_TOKEN=... (its pings fail until it is set)",
                )
            )  # fmt: skip
    return out
