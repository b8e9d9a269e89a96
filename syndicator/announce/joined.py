"""When each channel joined: it announces only episodes that appeared after that.

A channel added to a config with a back catalogue must not post the catalogue; a
renamed channel (`renamed_from`, or the same account under a new name) keeps its rows
and its join time, so nothing is posted twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from syndicator.config import ChannelConfig
from syndicator.sources.base import ProblemData
from syndicator.store import channel_rows, problems
from syndicator.store.channel_rows import ChannelRecord

log = logging.getLogger(__name__)


def account(ch: ChannelConfig) -> str | None:
    """A fingerprint of the account a channel posts as (its endpoint and the secret or
    handle that picks the account, as its kind says), or None when nothing names it."""
    from syndicator.plugins import kinds

    k = kinds().get(ch.type)
    return k.account_key(ch) if k is not None else None


def joined_at(
    s: Session, channels: list[ChannelConfig], now: datetime, *, dry_run: bool = False
) -> dict[str, datetime]:
    """Each configured channel's join time; a first sight or a rename is stored
    (unless `dry_run`, which only computes what a real pass would)."""
    names = {c.name for c in channels}
    records = {r.name: r for r in channel_rows.known(s)}
    out: dict[str, datetime] = {}
    for ch in channels:
        acct = account(ch)
        rec = records.get(ch.name)
        if rec is not None and rec.removed_at is None:
            out[ch.name] = rec.added_at
            if acct and rec.account != acct and not dry_run:
                channel_rows.put(s, ChannelRecord(ch.name, rec.added_at, acct), now)
            continue
        if rec is not None:  # back after passes without it: what appeared meanwhile is old
            out[ch.name] = now
            if not dry_run:
                channel_rows.put(s, ChannelRecord(ch.name, now, acct or rec.account), now)
            continue
        old = _renamed_from(s, ch, acct, records, names)
        if old is not None:
            # Renamed in one config change: its join time holds. After a gap: from now.
            added = old.added_at if old.removed_at is None else now
            if not dry_run:
                moved = channel_rows.rename_rows(s, old.name, ch.name)
                channel_rows.drop(s, old.name)
                how = "renamed_from" if ch.renamed_from else "the same account"
                log.info(
                    "channel %s is %s renamed (%s): %d rows kept", ch.name, old.name, how, moved
                )
                problems.record(
                    s,
                    f"channel:{ch.name}",
                    ProblemData(
                        ch.name,
                        "renamed",
                        f"channel {ch.name!r} is the renamed {old.name!r} ({how}): its "
                        f"{moved} deliveries are kept and nothing is posted again",
                        severity="notice",
                    ),
                    now,
                )
            records.pop(old.name)
        else:
            # A channel from before join times were kept: its first row tells.
            added = channel_rows.first_planned(s, ch.name) or now
        out[ch.name] = added
        if not dry_run:
            channel_rows.put(s, ChannelRecord(ch.name, added, acct), now)
    if not dry_run:
        for rec in records.values():
            if rec.name not in names and rec.removed_at is None:
                rec.removed_at = now
                channel_rows.put(s, rec, now)
    return out


def _renamed_from(
    s: Session,
    ch: ChannelConfig,
    acct: str | None,
    records: dict[str, ChannelRecord],
    names: set[str],
) -> ChannelRecord | None:
    """The record this new channel continues: `renamed_from`, else the one channel gone
    from the config that posted as the same account."""
    if ch.renamed_from and ch.renamed_from not in names:
        old = ch.renamed_from
        rec = records.get(old)
        if rec is None:  # a channel from before join times were kept
            first = channel_rows.first_planned(s, old)
            rec = ChannelRecord(old, first, None) if first is not None else None
            if rec is not None:
                records[old] = rec
        return rec
    if acct is None:
        return None
    same = [r for r in records.values() if r.account == acct and r.name not in names]
    return same[0] if len(same) == 1 else None
