"""Printing a pass report and the status for people."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syndicator.events import PassEvent, pass_events
from syndicator.passreport import PassReport
from syndicator.store.problems import group, group_line, needs_action
from syndicator.timeutil import parse_iso


def _local(value: str | None, tz: ZoneInfo) -> str:
    if not value:
        return "-"
    return parse_iso(value).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def print_events(out: Console, events: list[PassEvent]) -> None:
    """One plain line per event (the same events the daemon logs)."""
    for ev in events:
        out.print(ev.text, highlight=False, markup=False)


def print_report(out: Console, err: Console, report: PassReport, *, verbose: bool) -> None:
    events = pass_events(report)
    if verbose and report.dry_run:
        print_events(out, [e for e in events if e.kind in ("source", "stored", "changed")])
    elif verbose:
        print_events(out, [e for e in events if e.kind != "feed"])
    if report.dry_run:
        out.print(
            f"[bold]dry run[/bold]: {len(report.would_send)} announcement(s) would be sent now"
        )
        for row in report.would_send:
            out.print(f"\n[bold]{escape(row['channel'])}[/bold]")
            out.print(row["text"], markup=False, highlight=False, soft_wrap=True)
        later = [
            p for p in report.planned if p.state == "planned" and p.due_at and p.due_at > report.now
        ]
        for p in later:
            out.print(
                f"\n{p.channel}: '{p.episode.title}' would wait until {p.due_at.isoformat()}",
                markup=False,
            )
    elif verbose:
        kinds: dict[str, int] = {}
        for p in report.planned:
            key = "planned" if p.state == "planned" else (p.reason or "skipped").split(":")[0]
            if p.state == "awaiting_approval":
                key = "awaiting approval"
            kinds[key] = kinds.get(key, 0) + 1
        planned = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing new"
        out.print(
            f"announcements: {planned}; sent {report.sends.sent}, "
            f"retrying {report.sends.retrying}, unknown {report.sends.unknown}, "
            f"failed {report.sends.failed}",
            highlight=False,
        )
        for p in report.planned:
            if p.state == "skipped" and p.reason and p.reason.startswith("dry-run"):
                out.print(f"\n[bold]{escape(p.channel)}[/bold] (dry-run channel)")
                out.print(p.text, markup=False, highlight=False, soft_wrap=True)
        for f in report.feeds:
            verb = "written" if f.changed else "unchanged"
            out.print(
                f"feed {f.name}: {verb} ({f.episode_count} episodes)",
                highlight=False,
                markup=False,
            )
        c = report.counts
        if c.read or c.gone or c.waiting:
            waiting = f"; waiting: {', '.join(c.waiting)}" if c.waiting else ""
            out.print(
                f"listener counts: {c.read} post(s) read, {c.gone} deleted{waiting}",
                highlight=False,
                markup=False,
            )
    for msg in report.channel_errors:
        err.print(f"[yellow]channel:[/yellow] {escape(msg)}", highlight=False)
    # Under cron only what this pass found is printed (one mail per incident); the exit
    # code still says 1 while anything is open.
    shown = report.attention if verbose else report.new_attention
    if shown:
        err.print(f"[red]{len(shown)} thing(s) need attention:[/red]")
        for line in shown:
            err.print(f"  {line}", highlight=False, markup=False)
        if not verbose and len(report.attention) > len(shown):
            more = len(report.attention) - len(shown)
            err.print(f"  and {more} known before; see `syndicator status`", highlight=False)


def print_status(out: Console, data: dict[str, Any], tz: ZoneInfo) -> None:
    d = data["daemon"]
    if d["alive"]:
        out.print(
            f"daemon: [green]alive[/green] ({escape(d['state'] or '')}), "
            f"next pass {_local(d['next_pass'], tz)}"
        )
    else:
        how = ", stopped cleanly" if d.get("stopped") else ""
        out.print(f"daemon: not running (last seen {_local(d['last_seen'], tz)}{how})")
    workers = data.get("workers") or []
    if workers:
        alive = [w for w in workers if w["alive"]]
        out.print(
            f"workers: {len(alive)} alive of {len(workers)} known; "
            + ", ".join(
                f"{escape(w['host'])}:{w['pid']} {w['polls']} polls {w['sends']} sends"
                + ("" if w["alive"] else " (gone)")
                for w in workers[:10]
            )
        )
    t = Table("source", "type", "last poll", "state", "next due", "episodes")
    for s in data["sources"]:
        st = (
            "[green]ok[/green]"
            if s["ok"]
            else f"[red]{escape(s['disabled_reason'] or s['last_error'] or 'error')}[/red]"
        )
        if s["consecutive_errors"]:
            st += f" ({s['consecutive_errors']} errors in a row)"
        show = s.get("show") or {}
        name = escape(s["name"])
        if show.get("title"):  # a remote feed's own show
            name += f"\n[dim]{escape(show['title'])}[/dim]"
            if show.get("locked"):
                name += " [dim](locked)[/dim]"
        t.add_row(
            name,
            s["type"],
            _local(s["last_poll"], tz),
            st,
            _local(s["next_due"], tz),
            str(s["episodes"]),
        )
    out.print(t)
    if data["deliveries"]:
        states = ["planned", "sending", "sent", "retrying", "unknown", "failed", "skipped"]
        states += ["awaiting_approval"]  # a person in the loop
        if any(c.get("waiting_audio") for c in data["deliveries"].values()):
            states.append("waiting_audio")  # announcements whose audio is not there yet
        if any(c.get("waiting") for c in data["deliveries"].values()):
            states.append("waiting")  # replies of a thread whose parent is not sent yet
        t = Table("channel", *states)
        for ch, counts in sorted(data["deliveries"].items()):
            t.add_row(escape(ch), *(str(counts.get(s, 0)) for s in states))
        out.print(t)
    if data.get("awaiting_approval"):
        out.print(
            f"{data['awaiting_approval']} announcement(s) wait for approval: "
            "syndicator deliveries --state awaiting_approval",
            markup=False,
        )
    for a in data.get("audio_waiting", []):
        late = ", past verify_audio_timeout" if a["timed_out"] else ""
        out.print(
            f"waiting for audio: {a['title']!r} ({a['url']}), {a['checks']} check(s){late}: "
            f"{a['last_error']}; next check {_local(a['next_check'], tz)}",
            markup=False,
            highlight=False,
        )
    for f in data["feeds"]:
        out.print(
            f"feed {f['name']}: {f['episodes']} episodes, built {_local(f['built_at'], tz)}; "
            f"{len(f['problems'])} problem(s)",
            markup=False,
        )
    print_problem_groups(out, data["problems"], tz)


def print_problem_groups(out: Console, rows: list[dict[str, Any]], tz: ZoneInfo) -> None:
    """Open problems grouped by kind and message: one line for 106 files with the same
    dropped include. Notices (no action needed) come last, dimmed, after a count."""
    groups = group(rows)
    action = [g for g in groups if needs_action(g.severity)]
    notices = [g for g in groups if not needs_action(g.severity)]
    if action:
        n = sum(g.count for g in action)
        out.print(f"[red]{n} open problem(s):[/red]")
        for g in action:
            out.print(
                f"  {g.severity}: {g.source}: {group_line(g)} (since {_local(g.since, tz)})",
                highlight=False,
                markup=False,
            )
    else:
        out.print("no open problems")
    if notices:
        n = sum(g.count for g in notices)
        out.print(f"[dim]{n} notice(s), no action needed:[/dim]")
        for g in notices:
            out.print(
                f"  notice: {g.source}: {group_line(g)}", style="dim", highlight=False, markup=False
            )
