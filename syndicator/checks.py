"""`syndicator check`: validate the config and read every source, changing nothing."""

from __future__ import annotations

from syndicator.config import FeedSourceConfig, JekyllSourceConfig, Settings
from syndicator.sources.base import ProblemData


def check_all(settings: Settings) -> tuple[list[ProblemData], list[str]]:
    """Every problem found, and a line of notes per source. Nothing is written."""
    from syndicator.sources import jekyll
    from syndicator.sources.feeds import poll as remote

    problems: list[ProblemData] = []
    notes: list[str] = []
    tz = settings.podcast.tz
    for src in settings.sources:
        if not src.enabled:
            notes.append(f"{src.name}: disabled")
            continue
        if isinstance(src, JekyllSourceConfig):
            result = jekyll.scan(src, {}, tz=tz)
            eps = [f for f in result.files if f.episode is not None]
            notes.append(f"{src.name}: {len(result.files)} post(s), {len(eps)} episode(s)")
            problems.extend(_prefixed(src.name, str(src.path), result.problems))
    feeds = [s for s in settings.sources if isinstance(s, FeedSourceConfig) and s.enabled]
    if feeds:
        reqs = [remote.PollRequest(s, s.url, None, None) for s in feeds]
        for req, res in zip(reqs, remote.poll_feeds_sync(reqs, settings.fetch, tz=tz), strict=True):
            notes.append(f"{req.source.name}: {res.status}, {len(res.episodes)} item(s)")
            problems.extend(res.problems)
    problems.extend(_check_channels(settings))
    problems.extend(_check_templates(settings))
    return problems, notes


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
    return out
