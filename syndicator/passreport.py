"""What one pass reports: each source's outcome, plans, sends, feeds, and what needs a person.

`pipeline.run_once` fills a PassReport; report.py prints it, events.py turns it into
log events, the web page shows its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syndicator.announce.audio import AudioStats
from syndicator.announce.listeners import CountsReport
from syndicator.announce.outbox import PlannedRow
from syndicator.announce.sender import SendStats


@dataclass
class SourceOutcome:
    name: str
    type: str
    status: str  # ok, not-modified, error, gone, skipped (not due), disabled
    new: int = 0
    changed: int = 0
    withdrawn: int = 0
    problems: int = 0
    error: str | None = None
    new_titles: list[str] = field(default_factory=list)  # for the pass's events
    changed_titles: list[str] = field(default_factory=list)


@dataclass
class PassReport:
    now: datetime
    dry_run: bool
    sources: list[SourceOutcome] = field(default_factory=list)
    planned: list[PlannedRow] = field(default_factory=list)
    would_send: list[dict[str, Any]] = field(default_factory=list)  # dry-run
    sends: SendStats = field(default_factory=SendStats)
    audio: AudioStats = field(default_factory=AudioStats)  # enclosures checked before sending
    feeds: list[Any] = field(default_factory=list)  # directory.publish.FeedOutcome
    pings_planned: int = 0
    channel_errors: list[str] = field(default_factory=list)
    attention: list[str] = field(default_factory=list)
    new_attention: list[str] = field(default_factory=list)  # first seen in this pass
    send_titles: list[str] = field(default_factory=list)  # episode of each sends.events
    catch_up: list[str] = field(default_factory=list)  # what catch-up did (announce/approval)
    counts: CountsReport = field(default_factory=CountsReport)  # listener counts read
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.attention else 0
