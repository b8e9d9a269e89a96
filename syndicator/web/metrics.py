"""Prometheus metrics read from the store at scrape time (a custom collector).

Every number comes from stored rows, so a scrape shows the daemon's, a cron
pass's and the web page's work alike, and survives restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from syndicator.config import Settings
from syndicator.store import counts as store_counts
from syndicator.store import deliveries as store_deliveries
from syndicator.store import episodes as store_episodes
from syndicator.store import feeds as store_feeds
from syndicator.store import problems as store_problems
from syndicator.store import sources as store_sources
from syndicator.store.db import session
from syndicator.store.views import daemon_dict
from syndicator.timeutil import utcnow

# Sending a post takes from ~100 ms to a minute with retries inside a channel.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Extra = tuple[str, str, float]  # (name, help, value) of a gauge the app adds


def _ts(value: Any) -> float:
    return value.timestamp() if value is not None else 0.0


class StoreCollector(Collector):
    def __init__(
        self, engine: Engine, settings: Settings, extra: Callable[[], list[Extra]] | None
    ) -> None:
        self.engine, self.settings, self.extra = engine, settings, extra

    def describe(self) -> list[Metric]:
        return []  # collected on demand only; nothing to register up front

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with session(self.engine) as s:
            polls = CounterMetricFamily(
                "syndicator_source_polls", "Polls of a source.", labels=["source", "type"]
            )
            errors = CounterMetricFamily(
                "syndicator_source_poll_errors", "Polls that failed.", labels=["source", "type"]
            )
            consecutive = GaugeMetricFamily(
                "syndicator_source_consecutive_errors",
                "Failed polls in a row (0 when the last poll was fine).",
                labels=["source"],
            )
            last_poll = GaugeMetricFamily(
                "syndicator_source_last_poll_timestamp_seconds",
                "When a source was last polled (Unix time).",
                labels=["source"],
            )
            last_ok = GaugeMetricFamily(
                "syndicator_source_last_ok_timestamp_seconds",
                "When a source was last read without an error (Unix time).",
                labels=["source"],
            )
            for src in store_sources.all_by_name(s):
                polls.add_metric([src.name, src.type], src.polls)
                errors.add_metric([src.name, src.type], src.poll_errors)
                consecutive.add_metric([src.name], src.consecutive_errors)
                if src.last_poll_at is not None:
                    last_poll.add_metric([src.name], _ts(src.last_poll_at))
                if src.last_ok_at is not None:
                    last_ok.add_metric([src.name], _ts(src.last_ok_at))
            yield from (polls, errors, consecutive, last_poll, last_ok)

            episodes = GaugeMetricFamily(
                "syndicator_episodes", "Stored episodes per source.", labels=["source"]
            )
            for source, n in store_episodes.count_by_source(s):
                episodes.add_metric([source], n)
            yield episodes

            deliveries = GaugeMetricFamily(
                "syndicator_deliveries",
                "Outbox rows per channel, kind and state.",
                labels=["channel", "kind", "state"],
            )
            for channel, kind, state, n in store_deliveries.count_by_channel_kind_state(s):
                deliveries.add_metric([channel, kind, state], n)
            yield deliveries

            # A histogram of send latency built by the database from the stored rows.
            hist = HistogramMetricFamily(
                "syndicator_send_latency_seconds",
                "Time from starting a send to the network's answer, per channel.",
                labels=["channel"],
            )
            for channel, count, total, le in store_deliveries.latency_histogram(s, LATENCY_BUCKETS):
                buckets = [
                    (str(b), float(n or 0)) for b, n in zip(LATENCY_BUCKETS, le, strict=True)
                ]
                buckets.append(("+Inf", float(count)))
                hist.add_metric([channel], buckets, float(total))
            yield hist

            build = GaugeMetricFamily(
                "syndicator_feed_build_seconds", "How long the last feed build took.",
                labels=["feed"],
            )  # fmt: skip
            size = GaugeMetricFamily(
                "syndicator_feed_size_bytes", "Size of the published feed.", labels=["feed"]
            )
            items = GaugeMetricFamily(
                "syndicator_feed_episodes", "Episodes in the published feed.", labels=["feed"]
            )
            built = GaugeMetricFamily(
                "syndicator_feed_built_timestamp_seconds",
                "When the feed was last built (Unix time).",
                labels=["feed"],
            )
            feed_problems = GaugeMetricFamily(
                "syndicator_feed_check_problems",
                "Problems the last feed check found.",
                labels=["feed"],
            )
            for f in store_feeds.all_by_name(s):
                build.add_metric([f.name], f.build_seconds)
                size.add_metric([f.name], f.size_bytes)
                items.add_metric([f.name], f.episode_count)
                if f.built_at is not None:
                    built.add_metric([f.name], _ts(f.built_at))
                feed_problems.add_metric([f.name], len(f.check_problems))
            yield from (build, size, items, built, feed_problems)

            # What listeners did: each post's latest reading, summed per channel.
            listener = GaugeMetricFamily(
                "syndicator_listener_counts",
                "Likes, reposts, replies, quotes and views of the sent posts, as last read "
                "from each network, summed per channel (count=posts: posts read).",
                labels=["channel", "count"],
            )
            for channel, key, n in store_counts.latest_totals(s):
                listener.add_metric([channel, key], n)
            read_at = GaugeMetricFamily(
                "syndicator_listener_counts_read_timestamp_seconds",
                "When a channel's counts were last read (Unix time).",
                labels=["channel"],
            )
            for channel, at in store_counts.last_read_at(s):
                read_at.add_metric([channel], _ts(at))
            yield from (listener, read_at)

            problems = GaugeMetricFamily(
                "syndicator_problems_open", "Open problems.", labels=["severity"]
            )
            for severity, n in store_problems.open_count_by_severity(s):
                problems.add_metric([severity], n)
            yield problems

            daemon = daemon_dict(s, now, self.settings.daemon.heartbeat * 3)
        yield GaugeMetricFamily(
            "syndicator_daemon_alive",
            "1 when a daemon's heartbeat is fresh.",
            value=1.0 if daemon["alive"] else 0.0,
        )
        for name, help_text, value in self.extra() if self.extra else []:
            yield GaugeMetricFamily(name, help_text, value=value)


def make_registry(
    engine: Engine, settings: Settings, extra: Callable[[], list[Extra]] | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(engine, settings, extra))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
