"""The `syndicator` command: flags in, calls the pipeline / store / web, prints.

Exit codes: 0 success; 1 the pass ran but something needs attention; 2 usage or
configuration error.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from syndicator import __version__, config
from syndicator.config import ConfigError, Settings
from syndicator.console import make_console
from syndicator.logs import setup_logging
from syndicator.timeutil import format_duration, parse_iso, utcnow


class _Group(TyperGroup):
    """Help without a `<bool>` value hint on flags (a flag takes no value)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _quiet_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None and not hasattr(cmd, "list_commands") and not hasattr(cmd, "_quiet"):
            cmd._quiet = True  # type: ignore[attr-defined]  # patched once per command
            for p in cmd.params:  # the command's own; --help is added by get_params
                _quiet_flags([p])
            original = cmd.get_help_option
            cmd.get_help_option = lambda c: _quiet_one(original(c))  # type: ignore[method-assign]
        return cmd


def _quiet_one(param: Any) -> Any:
    if param is not None:
        _quiet_flags([param])
    return param


def _quiet_flags(params: list[Any]) -> list[Any]:
    for p in params:
        # duck-typed: Typer ships its own copy of Click's classes
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


# Help texts are Markdown: square brackets such as [web] stay as written.
app = typer.Typer(
    cls=_Group,
    name="syndicator",
    help="Podcast feed aggregator and syndication bot: reads episode posts and feeds, "
    "announces new episodes on every configured channel (social networks, chats), and publishes "
    "the podcast feed.",
    epilog="Exit codes: 0 success; 1 the pass ran but something needs attention (a failed "
    "delivery, a bad file); 2 usage or configuration error. Secrets come from the environment "
    "as `SYNDICATOR_<CHANNEL>_<KEY>`; see README.md.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
_SUB: dict[str, Any] = {"cls": _Group, "no_args_is_help": True, "rich_markup_mode": "markdown"}
feed_app = typer.Typer(help="Build and check the published podcast feeds.", **_SUB)
db_app = typer.Typer(help="Database maintenance.", **_SUB)
delivery_app = typer.Typer(
    help="Act on one delivery: retry, skip, settle an unknown outcome, or approve, edit or "
    "reject one that waits for approval.",
    **_SUB,
)
web_app = typer.Typer(help="Admin web page settings.", **_SUB)
app.add_typer(feed_app, name="feed")
app.add_typer(db_app, name="db")
app.add_typer(delivery_app, name="delivery")
app.add_typer(web_app, name="web")
sources_app = typer.Typer(
    help="Feed sources kept in the store: OPML import and export, add, remove, disable.", **_SUB
)
app.add_typer(sources_app, name="sources")

out = make_console()
err = make_console(stderr=True)


class LogFormat(StrEnum):
    auto = "auto"
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class DeliveryState(StrEnum):
    planned = "planned"
    sending = "sending"
    sent = "sent"
    retrying = "retrying"
    unknown = "unknown"
    failed = "failed"
    skipped = "skipped"
    waiting = "waiting"  # a reply of a thread, until its parent is sent
    waiting_audio = "waiting_audio"
    awaiting_approval = "awaiting_approval"


class State:
    config_path: Path | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = config.load(self.config_path)
            except ConfigError as exc:
                for p in exc.problems:
                    err.print(f"[red]error:[/red] {escape(str(p))}", highlight=False)
                raise typer.Exit(2) from None
        return self._settings


state = State()


def _version(value: bool) -> None:
    if value:
        print(f"syndicator {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file. Default: $SYNDICATOR_CONFIG or ./syndicator.toml.",
            envvar="SYNDICATOR_CONFIG",
            show_envvar=False,
        ),
    ] = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            help="Log lines: text (readable), json (JSON lines) or auto (text on a terminal)."
        ),
    ] = LogFormat.auto,
    log_level: Annotated[LogLevel, typer.Option(help="How much to log.")] = LogLevel.warning,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    state.config_path = config_file
    state._settings = None
    setup_logging(log_format.value, log_level.value)


# A --now further than this from the clock only previews, unless --force (docs/operations.md).
NOW_TOLERANCE = timedelta(minutes=10)


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        err.print(
            f"error: --now {value!r} is not ISO 8601 (e.g. 2026-11-27T09:00:00Z)", markup=False
        )
        raise typer.Exit(2) from None


def _dump(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# ---------------------------------------------------------------- init / check


@app.command()
def init(
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example config to the config path."""
    path = state.config_path or config.default_config_path()
    if path.exists() and not force:
        err.print(f"error: {path} exists; use --force to overwrite it", markup=False)
        raise typer.Exit(2)
    example = Path(__file__).with_name("example.toml").read_text(encoding="utf-8")
    path.write_text(example, encoding="utf-8")
    out.print(f"wrote {path}; edit it, then run `syndicator check`", markup=False)


@app.command()
def check() -> None:
    """Validate the config and read every source without changing any state.

    Prints every problem with its file and line. Exit 1 when a source has problems.
    """
    from syndicator.checks import check_all
    from syndicator.store.problems import group, group_line, needs_action

    settings = state.settings()
    problems, notes = check_all(settings)
    for n in notes:
        out.print(n, highlight=False, markup=False)
    # Grouped: "include x.html dropped — in 106 places" is one line; notices are dim.
    rows = [
        {"location": p.location, "line": p.line, "kind": p.kind, "severity": p.severity,
         "message": p.message}
        for p in problems
    ]  # fmt: skip
    for g in group(rows):
        style = "red" if needs_action(g.severity) else "dim"
        err.print(f"[{style}]{g.severity}:[/{style}] {escape(group_line(g))}", highlight=False)
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(1)
    out.print("[green]config and sources OK[/green]")


# ---------------------------------------------------------------- passes


@app.command("run-once")
def run_once(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Render and print what would be sent; send nothing, change no delivery.",
        ),
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(
            help="Run the pass as if it were this time (ISO 8601, e.g. 2026-12-01T09:00Z)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            help="Poll every feed now, due or not; with a --now far from the clock, "
            "store and send what that pass does instead of previewing it."
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Print the summary even without a terminal (cron is quiet)."
        ),
    ] = False,
) -> None:
    """Run one pass: poll sources, store episodes, announce what is due, rebuild feeds.

    On a terminal it shows progress and a summary; under cron it prints only what needs
    attention (and exits 1 then).
    """
    from syndicator.pipeline import run_once as do_pass
    from syndicator.progress import console_progress

    settings = state.settings()
    tty = sys.stdout.isatty()
    at = _now(now)
    if at is not None and not dry_run and not force and abs(at - utcnow()) > NOW_TOLERANCE:
        # Leases, due times and poll times written at a far --now would hold rows until
        # that date for real-time passes: such a pass only previews.
        err.print(
            f"--now {at.isoformat().replace('+00:00', 'Z')} is more than "
            f"{format_duration(NOW_TOLERANCE)} from the clock: "
            "previewing only what is stored (as --dry-run, without reading the sources): "
            "nothing is stored or sent. Add --force to run that pass for real (what it "
            "leaves is dated then).",
            markup=False,
        )
        dry_run, poll = True, False
    else:
        poll = True
    with console_progress(out, enabled=tty) as progress:
        report = do_pass(
            settings, now=at, dry_run=dry_run, progress=progress, force_poll=force, poll=poll
        )
    from syndicator.report import print_report

    shown = tty or dry_run or verbose
    print_report(out, err, report, verbose=shown)
    if not shown:  # cron: the same events as log lines, seen with --log-level info
        from syndicator.events import log_events, pass_events

        log_events(pass_events(report))
    raise typer.Exit(report.exit_code)


@app.command()
def run(
    web: Annotated[
        bool, typer.Option("--web", help="Serve the admin page in the daemon too.")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Web host (with --web).")] = None,
    port: Annotated[int | None, typer.Option(help="Web port (with --web).")] = None,
) -> None:
    """Run as a daemon: passes on schedule, instant pickup of new posts, SIGHUP reloads."""
    from syndicator.daemon import Daemon
    from syndicator.events import EVENTS_LOGGER

    # What the daemon does (one line per post, send, feed) is its output: shown at the
    # default level; --log-level error hides it.
    events = logging.getLogger(EVENTS_LOGGER)
    if logging.INFO < logging.getLogger().level <= logging.WARNING:
        events.setLevel(logging.INFO)
    settings = state.settings()
    daemon = Daemon(settings, config_path=state.config_path, web=web, host=host, port=port)
    raise typer.Exit(daemon.run())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default from [web]).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from [web]).")] = None,
) -> None:
    """Serve the admin status web page."""
    from syndicator.web.server import serve as do_serve

    settings = state.settings()
    raise typer.Exit(do_serve(settings, host=host, port=port))


# ---------------------------------------------------------------- views


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """Sources, deliveries per channel and state, feeds, open problems, the daemon."""
    from syndicator.store.db import open_store
    from syndicator.store.views import status_dict

    settings = state.settings()
    engine = open_store(settings)
    data = status_dict(engine, utcnow(), settings.daemon.heartbeat * 3)
    if as_json:
        _dump(data)
        return
    from syndicator.report import print_status

    print_status(out, data, settings.podcast.tz)


@app.command()
def episodes(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """Every stored episode, newest first."""
    from syndicator.store.db import open_store, session
    from syndicator.store.history import for_episodes
    from syndicator.store.views import episode_dict, list_episodes

    settings = state.settings()
    with session(open_store(settings)) as s:
        events = for_episodes(s)
        rows = [episode_dict(e, events.get(e.id)) for e in list_episodes(s)]  # type: ignore[arg-type]
    if as_json:
        _dump(rows)
        return
    table = Table("#", "date", "title", "guests", "source", "state")
    tz = settings.podcast.tz
    for r in rows:
        date = parse_iso(r["date"]).astimezone(tz).strftime("%Y-%m-%d") if r["date"] else ""
        table.add_row(
            str(r["number"] if r["number"] is not None else ""),
            date,
            escape(r["title"]),
            escape(", ".join(g["name"] for g in r["guests"])),
            escape(r["source"]),
            "withdrawn" if r["withdrawn"] else ("audio" if r["enclosure"] else "no audio"),
        )
    out.print(table)


@app.command()
def deliveries(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
    state_filter: Annotated[
        DeliveryState | None, typer.Option("--state", help="Only rows in this state.")
    ] = None,
) -> None:
    """The outbox: one row per episode and channel (and per feed ping)."""
    from syndicator.store.db import open_store, session
    from syndicator.store.views import delivery_dict, list_deliveries

    settings = state.settings()
    with session(open_store(settings)) as s:
        rows = [delivery_dict(d, g) for d, g in list_deliveries(s)]
    if state_filter:
        rows = [r for r in rows if r["state"] == state_filter.value]
    if as_json:
        _dump(rows)
        return
    table = Table("id", "channel", "state", "tries", "episode", "detail")
    for r in rows:
        detail = r["remote_url"] or r["last_error"] or r["skip_reason"] or r["target"] or ""
        table.add_row(
            str(r["id"]), escape(r["channel"]), r["state"], str(r["attempts"]),
            escape(r["episode"] or ""), escape(detail),
        )  # fmt: skip
    out.print(table)


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """What listeners did: likes, reposts, replies, quotes and views of the posts sent in
    the last `[stats] days`, per channel and per post, as last read from each network."""
    from syndicator.announce.listeners import summary
    from syndicator.store.db import open_store, session

    settings = state.settings()
    with session(open_store(settings)) as s:
        data = summary(s, settings, utcnow())
    if as_json:
        _dump(data)
        return
    keys = ("likes", "reposts", "replies", "quotes", "views")
    if not data["enabled"]:
        out.print("Reading counts is off ([stats] enabled = false).")
    if not data["channels"]:
        out.print(
            f"No counts read yet: posts are read `{data['every']}` after they are sent, "
            f"for {data['days']} days, on channels whose network gives counts."
        )
        return
    table = Table("channel", "posts", *keys, "read", "note")
    tz = settings.podcast.tz
    for c in data["channels"]:
        note = ""
        if c["refused"]:
            note = f"refused: {c['refused']}"
        elif c["waiting_until"]:
            note = f"waiting until {parse_iso(c['waiting_until']).astimezone(tz):%Y-%m-%d %H:%M}"
        read = (
            parse_iso(c["read_at"]).astimezone(tz).strftime("%Y-%m-%d %H:%M")
            if c["read_at"]
            else ""
        )
        table.add_row(
            escape(c["channel"]), str(c["posts"]),
            *(str(c["counts"].get(k, "")) for k in keys), read, escape(note),
        )  # fmt: skip
    out.print(table)
    posts = Table("channel", "episode", *keys, "post")
    for p in data["posts"]:
        posts.add_row(
            escape(p["channel"]), escape(p["episode"]),
            *(str(p["counts"].get(k, "")) for k in keys),
            "deleted" if p["gone"] else escape(p["remote_url"] or ""),
        )  # fmt: skip
    out.print(posts)


@app.command()
def preview(
    episode: Annotated[
        str | None, typer.Argument(help="Episode guid, #id, number, slug or path.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every episode.")] = False,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """Show each channel's announcement text for an episode, and whether it fits."""
    from syndicator.previews import PreviewError, previews

    settings = state.settings()
    _known_channel(channel)
    if not episode and not all_:
        err.print("error: name an EPISODE (guid, #id, number or slug) or use --all", markup=False)
        raise typer.Exit(2)
    try:
        rows = previews(settings, None if all_ else episode, channel)
    except PreviewError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    if as_json:
        _dump(rows)
        return
    for r in rows:
        mark = "[green]fits[/green]" if r["fits"] else "[red]too long[/red]"
        if r.get("withdrawn"):
            mark += " [yellow](withdrawn: never announced)[/yellow]"
        head = f"[bold]{escape(r['channel'])}[/bold] · {escape(r['title'])}"
        out.print(f"{head} · {r['length']}/{r['limit']} {mark}", highlight=False)
        out.print(r["text"], markup=False, highlight=False, soft_wrap=True)
        for part in r.get("thread") or []:  # the replies that follow it
            out.print(f"  ↳ reply {part['part']} · {part['length']}/{r['limit']}", highlight=False)
            out.print(part["text"], markup=False, highlight=False, soft_wrap=True)
        out.print()


def _known_channel(name: str | None) -> None:
    """--channel takes a channel of the config; anything else is a usage error."""
    names = [c.name for c in state.settings().channels]
    if name is not None and name not in names:
        valid = ", ".join(names) or "none configured"
        err.print(f"error: --channel {name!r} is not a channel (valid: {valid})", markup=False)
        raise typer.Exit(2)


# ---------------------------------------------------------------- delivery actions


def _action(fn: Any, *args: Any, **kwargs: Any) -> None:
    from syndicator.announce.manual import ActionError
    from syndicator.store.db import open_store

    engine = open_store(state.settings())
    try:
        row = fn(engine, *args, utcnow(), **kwargs)
    except ActionError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"delivery {row.id} on {row.channel}: {row.state}", markup=False)


@delivery_app.command("retry")
def delivery_retry(delivery_id: int) -> None:
    """Send a failed or skipped delivery again on the next pass."""
    from syndicator.announce.manual import retry

    _action(retry, delivery_id)


@delivery_app.command("skip")
def delivery_skip(
    delivery_id: int, reason: Annotated[str, typer.Option(help="Why.")] = "skipped by hand"
) -> None:
    """Never send this delivery."""
    from syndicator.announce.manual import skip

    _action(skip, delivery_id, reason=reason)


@delivery_app.command("mark-sent")
def delivery_mark_sent(delivery_id: int) -> None:
    """An `unknown` delivery did reach the network: record it as sent."""
    from syndicator.announce.manual import mark_unknown

    _action(mark_unknown, delivery_id, was_sent=True)


@delivery_app.command("mark-not-sent")
def delivery_mark_not_sent(delivery_id: int) -> None:
    """An `unknown` delivery did not reach the network: send it again."""
    from syndicator.announce.manual import mark_unknown

    _action(mark_unknown, delivery_id, was_sent=False)


# A person in the loop (announce/approval.py): rows held in awaiting_approval.


@delivery_app.command("approve")
def delivery_approve(delivery_id: int) -> None:
    """Let a delivery that waits for approval go out (the next pass sends it once due)."""
    from syndicator.announce.approval import approve

    _action(approve, delivery_id)


@delivery_app.command("reject")
def delivery_reject(
    delivery_id: int, reason: Annotated[str, typer.Option(help="Why.")] = "rejected by hand"
) -> None:
    """Never send a delivery that waits for approval (it is kept as skipped)."""
    from syndicator.announce.approval import reject

    _action(reject, delivery_id, reason=reason)


@delivery_app.command("edit")
def delivery_edit(
    delivery_id: int,
    text: Annotated[
        str | None, typer.Option(help="The new text; without it, $EDITOR opens the current one.")
    ] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve it too.")] = False,
) -> None:
    """Change the text of a delivery that waits for approval; it is fitted to the channel's
    limit and frozen again, and keeps waiting (unless --approve)."""
    from syndicator.actions import ActionError, edit_delivery
    from syndicator.announce.approval import approve as approve_row
    from syndicator.store import deliveries as store_deliveries
    from syndicator.store.db import open_store, session

    settings = state.settings()
    engine = open_store(settings)
    if text is None:
        with session(engine) as s:
            row = store_deliveries.by_id(s, delivery_id)
            current = row.text if row is not None else ""
        import click

        text = click.edit(current, extension=".txt", require_save=True)
        if text is None:
            err.print("error: the editor was closed without saving: nothing changed", markup=False)
            raise typer.Exit(1)
    try:
        done = edit_delivery(settings, delivery_id, text)
        if approve:
            approve_row(engine, delivery_id, utcnow())
    except ActionError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if done.shortened:
        err.print(
            f"note: the text was cut to fit {done.row.channel}'s limit of {done.limit}",
            markup=False,
        )
    final = "planned" if approve else done.row.state
    out.print(f"delivery {done.row.id} on {done.row.channel}: {final}", markup=False)
    out.print(done.row.text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def announce(
    episode: Annotated[str, typer.Argument(help="Episode guid, #id, number or slug.")],
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
) -> None:
    """Queue an episode's announcement now (even a backlog or filtered one)."""
    from syndicator.actions import ActionError, announce_episode

    _known_channel(channel)
    try:
        rows = announce_episode(state.settings(), episode, channel)
    except ActionError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    for r in rows:
        then = "checks its audio, then sends it" if r.state == "waiting_audio" else "sends it"
        out.print(f"queued on {r.channel} (delivery {r.id}); the next pass {then}", markup=False)


@app.command()
def card(
    episode: Annotated[str, typer.Argument(help="Episode guid, #id, number or slug.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the PNG here (default: the cards folder).")
    ] = None,
) -> None:
    """Write the episode's image card (docs/cards.md) and print where it is."""
    from syndicator.actions import ActionError, episode_card

    try:
        made = episode_card(state.settings(), episode, out_file)
    except ActionError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(str(out_file or made.path), markup=False)
    out.print(f"sha256 {made.sha256}", markup=False)
    out.print(f"alt: {made.alt}", markup=False)


# ---------------------------------------------------------------- sources (OPML, the store's)


def _every(value: str | None) -> timedelta | None:
    if value is None:
        return None
    from syndicator.timeutil import parse_duration

    try:
        every = parse_duration(value)
    except ValueError:
        every = timedelta(0)
    if every < timedelta(minutes=1):
        err.print(
            f"error: --every {value!r} is not a duration of a minute or more (e.g. 30m, 2h)",
            markup=False,
        )
        raise typer.Exit(2)
    return every


def _sources_engine() -> Any:
    from syndicator.store.db import open_store

    return open_store(state.settings())


@sources_app.command("import")
def sources_import(
    file: Annotated[Path, typer.Argument(help="An OPML file (any podcast app's export).")],
    every: Annotated[
        str | None, typer.Option(help="How often to poll each feed (default 30m).")
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="A category for every imported feed (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """Add every feed of an OPML file that is not followed yet."""
    from syndicator.sourcelist import import_opml
    from syndicator.sources.opml import OpmlError

    interval = _every(every)
    try:
        report = import_opml(
            _sources_engine(), state.settings(), file, every=interval, categories=category
        )
    except OpmlError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        _dump(report.to_dict())
        return
    out.print(
        f"added {len(report.added):,} feed(s) from {file} in {report.seconds:.2f} s; "
        f"{len(report.duplicates):,} already followed, {len(report.skipped):,} skipped",
        markup=False,
    )
    for line in [*report.duplicates[:20], *report.skipped[:20]]:
        out.print(f"  {line}", markup=False)
    more = max(len(report.duplicates) - 20, 0) + max(len(report.skipped) - 20, 0)
    if more:
        out.print(f"  ... and {more:,} more (--json lists them all)", markup=False)


@sources_app.command("export")
def sources_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Every feed source (config and store) as OPML 2.0."""
    from syndicator.sourcelist import export

    body = export(_sources_engine(), state.settings())
    if output is None:
        sys.stdout.write(body.decode("utf-8"))
    else:
        output.write_bytes(body)
        out.print(f"wrote {output}", markup=False)


@sources_app.command("list")
def sources_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (docs/json.md).")] = False,
) -> None:
    """Every source: config or store, its poll state and its show."""
    from syndicator.sourcelist import listing

    rows = listing(_sources_engine(), state.settings())
    if as_json:
        _dump(rows)
        return
    table = Table("source", "from", "show", "url", "episodes", "state")
    for r in rows:
        show = (r.get("show") or {}).get("title") or r.get("title") or ""
        st = "disabled" if not r.get("enabled", True) or r.get("disabled") else "ok"
        if r.get("consecutive_errors"):
            st = f"{r['consecutive_errors']} error(s)"
        table.add_row(
            escape(r["name"]), r["origin"], escape(show), escape(r.get("url") or ""),
            str(r.get("episodes", 0)), st,
        )  # fmt: skip
    out.print(table)


@sources_app.command("add")
def sources_add(
    url: Annotated[str, typer.Argument(help="The feed's RSS/Atom URL.")],
    name: Annotated[str | None, typer.Option(help="Source name (default: from the URL).")] = None,
    every: Annotated[str | None, typer.Option(help="How often to poll (default 30m).")] = None,
    category: Annotated[
        list[str] | None, typer.Option(help="A category for its episodes (repeatable).")
    ] = None,
) -> None:
    """Follow one more feed (kept in the store)."""
    from syndicator.sourcelist import SourceListError, add

    interval = _every(every)
    try:
        chosen = add(
            _sources_engine(), state.settings(), url, name=name, every=interval,
            categories=category,
        )  # fmt: skip
    except SourceListError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"added source {chosen!r} ({url}); the next pass reads it", markup=False)


def _source_action(name: str, verb: str, enabled: bool | None) -> None:
    from syndicator import sourcelist

    engine, settings = _sources_engine(), state.settings()
    try:
        if enabled is None:
            sourcelist.remove(engine, settings, name)
        else:
            sourcelist.set_enabled(engine, settings, name, enabled)
    except sourcelist.SourceListError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"source {name!r} {verb}", markup=False)


@sources_app.command("remove")
def sources_remove(name: str) -> None:
    """Stop following a stored source (its episodes stay)."""
    _source_action(name, "removed", None)


@sources_app.command("disable")
def sources_disable(name: str) -> None:
    """Stop polling a stored source, keeping it."""
    _source_action(name, "disabled", False)


@sources_app.command("enable")
def sources_enable(name: str) -> None:
    """Poll a disabled stored source again."""
    _source_action(name, "enabled", True)


# ---------------------------------------------------------------- feeds, db, backup


@feed_app.command("build")
def feed_build(
    check_only: Annotated[
        bool, typer.Option("--check", help="Validate without writing; print every problem.")
    ] = False,
) -> None:
    """Build the configured feeds now (only changed ones are written)."""
    from syndicator.directory.publish import publish_feeds
    from syndicator.store.db import open_store

    settings = state.settings()
    if not settings.feeds:
        err.print("error: no [[feeds]] configured; add one (see `syndicator init`)", markup=False)
        raise typer.Exit(2)
    engine = open_store(settings)
    outcomes = publish_feeds(engine, settings, utcnow(), check_only=check_only)
    if check_only:  # and the audio: reachable, the right size, byte ranges
        from syndicator.directory.enclosures import feed_enclosure_problems

        for o in outcomes:
            cfg = next(f for f in settings.feeds if f.name == o.name)
            found = feed_enclosure_problems(engine, settings, cfg, utcnow())
            o.problems += [str(p) for p in found if p.severity != "notice"]
    bad = False
    for o in outcomes:
        verb = "checked" if check_only else ("written" if o.changed else "unchanged")
        out.print(
            f"{o.name}: {verb} {o.path} ({o.episode_count} episodes, {o.size_bytes} bytes)",
            markup=False,
        )
        for p in o.problems:
            bad = True
            err.print(f"  [red]problem:[/red] {escape(str(p))}", highlight=False)
    raise typer.Exit(1 if bad else 0)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending database migrations (a pass does this by itself too)."""
    from syndicator.store.db import current_revision, upgrade

    settings = state.settings()
    engine = upgrade(settings.database.url, settings.database.busy_timeout_ms)
    out.print(f"database at revision {current_revision(engine)}", markup=False)


@app.command()
def backup(path: Annotated[Path, typer.Argument(help="Where to write the copy.")]) -> None:
    """A consistent copy of the SQLite store, safe while the daemon runs."""
    from syndicator.store.backup import BackupError, backup_sqlite

    settings = state.settings()
    try:
        size = backup_sqlite(settings.database.url, path)
    except BackupError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    out.print(f"backed up to {path} ({size} bytes)", markup=False)


@web_app.command("set-password")
def web_set_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Store an argon2 hash of the admin password in the config file."""
    from syndicator.web.auth import PasswordError, write_password_hash

    path = state.config_path or config.default_config_path()
    try:
        write_password_hash(path, password)
    except PasswordError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    out.print(f"password hash written to [web] in {path}", markup=False)


def main() -> None:
    logging.captureWarnings(True)
    try:
        app()
    except Exception as exc:
        # The machine's own faults (database down, disk full): one line, not a traceback.
        from syndicator.store.faults import describe

        settings = state._settings
        line = describe(exc, settings.database.url if settings else None)
        if line is None:
            raise
        err.print(f"error: {line}", markup=False, highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
