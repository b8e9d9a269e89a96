"""The Threads channel against a fake Threads API (real HTTP on 127.0.0.1), and end to end."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from fakes import FakeServer, FakeThreads, Received, Reply, refused_url
from sqlmodel import select

from syndicator.announce.render import Renderer
from syndicator.channels.base import (
    PermanentError,
    Post,
    Progress,
    Sent,
    TransientError,
    UnknownOutcome,
)
from syndicator.channels.registry import ConfigurationError, make_channel
from syndicator.channels.threads import ThreadsKind, threads_count, threads_handle
from syndicator.channels.threads.client import ThreadsChannel
from syndicator.config import ChannelConfig
from syndicator.pipeline import run_once
from syndicator.store import deliveries
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery
from tests.conftest import make_settings

TIMEOUT = 0.5
URL = "https://podcast.example.org/podcast/107-meteor"
TEXT = f"🎙 New episode: Hosting Meteor Apps, with @filipe.nevola {URL} #meteor"


class Saved:
    """A Progress store as the sender's: remembers each save, can refuse (lease lost)."""

    def __init__(self, fake: FakeThreads | None = None) -> None:
        self.values: list[dict[str, Any]] = []
        self.publishes_before_save: list[int] = []
        self.fake = fake
        self.refuse = False

    def __call__(self, values: dict[str, Any]) -> None:
        if self.fake is not None:
            self.publishes_before_save.append(len(self.fake.publishes()))
        if self.refuse:
            raise TransientError("this process no longer holds the delivery")
        self.values.append(values)


def post(
    text: str = TEXT, *, progress: dict[str, Any] | None = None, save: Saved | None = None,
    created_at: datetime | None = None,
) -> Post:  # fmt: skip
    return Post(
        delivery_id=1, text=text, idempotency_key="announce:1:threads", record_key="",
        created_at=created_at or datetime.now(UTC), url=URL,
        progress=Progress(progress or {}, save),
    )  # fmt: skip


@pytest.fixture
def th() -> Iterator[FakeThreads]:
    with FakeThreads() as fake:
        yield fake


def channel(fake: FakeThreads, monkeypatch: pytest.MonkeyPatch, **cfg: object) -> ThreadsChannel:
    for k, v in fake.env("threads").items():
        monkeypatch.setenv(k, v)
    conf = ChannelConfig.model_validate(
        {"name": "threads", "type": "threads", "api_url": fake.api_url,
         "user_id": fake.user_id, **cfg}
    )  # fmt: skip
    ch = make_channel(conf, timeout=TIMEOUT)
    assert isinstance(ch, ThreadsChannel)
    return ch


# ---- sent ---------------------------------------------------------------------------------


def test_send_creates_a_container_records_it_then_publishes_it(
    th: FakeThreads, monkeypatch
) -> None:
    saved = Saved(th)
    sent = channel(th, monkeypatch).send(post(save=saved))
    [create] = th.creates()
    form = create.body.decode()
    assert "media_type=TEXT" in form and "link_attachment=" in form
    assert create.headers["authorization"] == f"Bearer {th.token}"
    assert th.token not in create.raw_query + "".join(r.raw_query for r in th.received)
    [container] = th.containers.values()
    assert (container.text, container.link) == (TEXT, URL)
    [publish] = th.publishes()
    assert publish.arg("creation_id") == container.id
    # the container's id was stored before the publish request was made
    assert saved.values == [{"container_id": container.id}]
    assert saved.publishes_before_save == [0]
    [thread] = th.threads
    assert sent == Sent(
        remote_id=thread.id, remote_url=f"https://www.threads.net/@podbot/post/{thread.shortcode}"
    )


def test_a_lost_lease_stops_before_publishing(th: FakeThreads, monkeypatch) -> None:
    saved = Saved()
    saved.refuse = True
    with pytest.raises(TransientError, match="no longer holds"):
        channel(th, monkeypatch).send(post(save=saved))
    assert th.publishes() == [] and th.threads == []


def test_a_container_created_earlier_is_published_not_a_new_one(
    th: FakeThreads, monkeypatch
) -> None:
    """A crash after the container was recorded and before publishing: the same one goes out."""
    ch = channel(th, monkeypatch)
    th.fail_next(status=500, method="POST", path="threads_publish$")  # the first publish fails
    saved = Saved()
    with pytest.raises(TransientError, match="500"):
        ch.send(post(save=saved))
    [recorded] = saved.values
    sent = ch.send(post(progress=recorded, save=saved))
    assert len(th.creates()) == 1
    [thread] = th.threads
    assert thread.container_id == recorded["container_id"] and sent.remote_id == thread.id


def test_an_expired_container_is_replaced(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    old = Saved()
    th.fail_next(status=503, method="POST", path="threads_publish$")
    with pytest.raises(TransientError):
        ch.send(post(save=old))
    first = old.values[0]["container_id"]
    th.set_status(first, "EXPIRED")
    saved = Saved()
    ch.send(post(progress=old.values[0], save=saved))
    [thread] = th.threads
    assert thread.container_id != first
    assert saved.values == [{"container_id": thread.container_id}]


def test_a_failed_container_is_permanent_with_its_reason(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    saved = Saved()
    th.fail_next(status=500, method="POST", path="threads_publish$")
    with pytest.raises(TransientError):
        ch.send(post(save=saved))
    th.set_status(saved.values[0]["container_id"], "ERROR", "UNKNOWN")
    with pytest.raises(PermanentError, match="failed: UNKNOWN"):
        ch.send(post(progress=saved.values[0]))
    assert th.threads == []


# ---- transient ----------------------------------------------------------------------------


def test_rate_limit_is_transient_with_retry_after(th: FakeThreads, monkeypatch) -> None:
    th.rate_limit_next(retry_after=90, method="POST")
    with pytest.raises(TransientError) as info:
        channel(th, monkeypatch).send(post())
    assert info.value.status == 429 and info.value.retry_after == pytest.approx(90)
    assert "Application request limit reached" in info.value.message
    assert th.threads == []


def test_meta_rate_limit_code_on_a_400_is_transient(th: FakeThreads, monkeypatch) -> None:
    body = {"error": {"message": "User request limit reached", "type": "OAuthException",
                      "code": 17}}  # fmt: skip
    th.fail_next(status=400, body=body, method="POST", path="/threads$")
    with pytest.raises(TransientError, match="User request limit reached"):
        channel(th, monkeypatch).send(post())


def test_server_errors_and_timeouts_while_creating_are_transient(
    th: FakeThreads, monkeypatch
) -> None:
    ch = channel(th, monkeypatch)
    th.fail_next(status=502, method="POST", path="/threads$")
    with pytest.raises(TransientError, match="502"):
        ch.send(post())
    th.hang_next(seconds=2, store=True, method="POST", path="/threads$")
    with pytest.raises(TransientError, match="nothing was published"):
        ch.send(post())
    assert th.threads == [] and len(th.containers) == 1  # an orphan container, never shown


def test_connection_refused_is_transient(monkeypatch) -> None:
    monkeypatch.setenv("SYNDICATOR_THREADS_ACCESS_TOKEN", "t")
    conf = ChannelConfig.model_validate({"name": "threads", "type": "threads",
                                         "api_url": refused_url(), "user_id": "1"})  # fmt: skip
    with pytest.raises(TransientError, match="refused"):
        make_channel(conf, timeout=TIMEOUT).send(post())


# ---- permanent ----------------------------------------------------------------------------


def test_too_long_is_permanent_with_metas_message(th: FakeThreads, monkeypatch) -> None:
    with pytest.raises(PermanentError) as info:
        channel(th, monkeypatch).send(post("x" * 501))
    assert (
        "at most 500 characters" in info.value.message and "subcode 2207006" in info.value.message
    )
    assert info.value.status == 400


def test_bad_token_is_permanent_and_says_what_to_check(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    th.token = "rotated"
    with pytest.raises(PermanentError) as info:
        ch.send(post())
    assert "Invalid OAuth access token" in info.value.message and "code 190" in info.value.message
    assert "SYNDICATOR_<NAME>_ACCESS_TOKEN" in info.value.message
    assert "rotated" not in info.value.message and "threads-token" not in info.value.message


# ---- unknown, reconcile, resend -----------------------------------------------------------


def test_lost_publish_answer_is_unknown_then_reconciled_once(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    saved = Saved()
    th.drop_next(store=True, method="POST", path="threads_publish$")
    with pytest.raises(UnknownOutcome):
        ch.send(post(save=saved))
    assert len(th.threads) == 1
    again = post(progress=saved.values[0])
    found = ch.reconcile(again)
    assert found is not None and found.remote_id == th.threads[0].id
    assert found.remote_url and found.remote_url.endswith(th.threads[0].shortcode)
    # a resend after all (the outbox never does, but it must not post twice either)
    assert ch.send(again).remote_id == th.threads[0].id
    assert len(th.threads) == 1 and len(th.publishes()) == 1


def test_publish_that_times_out_is_unknown(th: FakeThreads, monkeypatch) -> None:
    th.hang_next(seconds=2, store=False, method="POST", path="threads_publish$")
    saved = Saved()
    with pytest.raises(UnknownOutcome, match="may have been received"):
        channel(th, monkeypatch).send(post(save=saved))
    assert th.threads == []
    # not published: reconcile says so, and the resend publishes the recorded container
    ch = channel(th, monkeypatch)
    again = post(progress=saved.values[0])
    assert ch.reconcile(again) is None
    ch.send(again)
    assert [t.container_id for t in th.threads] == [saved.values[0]["container_id"]]


def test_reconcile_without_a_container_reads_recent_threads(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    now = datetime.now(UTC)
    th.add_thread(TEXT, created_at=now - timedelta(days=2))  # the same text, long before
    assert ch.reconcile(post(created_at=now)) is None
    for i in range(60):  # enough to need a second page
        th.add_thread(f"something else {i}", created_at=now + timedelta(seconds=i + 1))
    mine = th.add_thread(TEXT.replace(URL, "https://l.threads.com/?u=x"), created_at=now)
    found = ch.reconcile(post(created_at=now))
    assert found is not None and found.remote_id == mine.id
    assert any(r.arg("after") for r in th.requests("GET", r"/threads$"))


def test_reconcile_that_cannot_read_stays_unknown(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    th.fail_next(status=500, method="GET")
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        ch.reconcile(post())
    th.fail_next(status=500, method="GET")
    with pytest.raises(UnknownOutcome, match="cannot tell"):
        ch.reconcile(post(progress={"container_id": "123"}))


# ---- limit, counting, handles -------------------------------------------------------------


def test_limit_and_metas_count(th: FakeThreads, monkeypatch) -> None:
    assert channel(th, monkeypatch).limit() == 500
    assert channel(th, monkeypatch, limit=300).limit() == 300
    kind = ThreadsKind()
    assert kind.count("abc") == 3
    assert kind.count("é") == 1  # a character, whatever its bytes
    assert kind.count("🎙") == 4 and kind.count("👍🏽") == 8  # an emoji: its UTF-8 bytes
    assert kind.count("👨‍👩‍👧") == 18
    # the fake counts the way Meta says: exactly 500 goes out, 501 does not
    at_limit = "🎙" * 100 + "x" * 100
    assert threads_count(at_limit) == 500
    channel(th, monkeypatch).send(post(at_limit))
    with pytest.raises(PermanentError):
        channel(th, monkeypatch).send(post(at_limit + "x"))


def test_handles() -> None:
    assert threads_handle("@Ann.Lima") == "ann.lima"
    assert threads_handle("https://www.threads.net/@ann_lima") == "ann_lima"
    assert threads_handle("https://threads.com/@ann.lima/") == "ann.lima"
    for bad in ("", "ann lima", "a..b", ".ann", "x" * 31, "https://x.com/ann"):
        assert threads_handle(bad) == "", bad
    kind = ThreadsKind()
    assert kind.has_handles and kind.mention("ann.lima") == "@ann.lima"
    assert kind.source_handle(" https://www.threads.net/@ann.lima ") == "ann.lima"


def test_guest_handles_from_front_matter_and_the_handles_table(tmp_path: Path) -> None:
    from syndicator.store.models import Episode

    s = make_settings(
        tmp_path, "sqlite:///unused.db",
        channels=[{"name": "threads", "type": "threads", "user_id": "1"}],
        handles={"Bo Chen": {"threads": "https://www.threads.net/@bo.chen"}},
    )  # fmt: skip
    ep = Episode(
        guid=URL, source="site", number=107, title="Hosting Meteor Apps", url=URL,
        date=datetime(2026, 11, 20, tzinfo=UTC),
        guests=[{"name": "Ana Lima", "threads": "@Ana.Lima"}, {"name": "Bo Chen"}],
    )  # fmt: skip
    r = Renderer(s).render(ep, s.channel("threads"))
    assert "with @ana.lima and @bo.chen" in r.text
    assert URL in r.text


# ---- counts and socialInteract ------------------------------------------------------------


def test_read_counts_from_insights(th: FakeThreads, monkeypatch) -> None:
    ch = channel(th, monkeypatch)
    sent = ch.send(post())
    assert sent.remote_id
    th.set_insights(sent.remote_id, views=120, likes=7, replies=2, reposts=1, quotes=3)
    assert ch.read_counts(sent.remote_id) == {
        "views": 120, "likes": 7, "replies": 2, "reposts": 1, "quotes": 3,
    }  # fmt: skip
    [req] = th.requests("GET", "/insights$")
    assert req.arg("metric") == "views,likes,replies,reposts,quotes"
    th.fail_next(status=500, method="GET", path="/insights$")
    with pytest.raises(TransientError):
        ch.read_counts(sent.remote_id)
    th.insights_allowed = False
    with pytest.raises(PermanentError, match="permission") as refused:
        ch.read_counts(sent.remote_id)
    assert refused.value.status == 403
    with pytest.raises(PermanentError, match="does not exist") as gone:
        ch.read_counts("18999999999999999")  # a deleted post: never asked again
    assert gone.value.status == 404


def test_no_social_interact_protocol() -> None:
    kind = ThreadsKind()
    assert kind.interact_protocol is None
    assert kind.social_interact(None, "1", "https://www.threads.net/@p/post/x") is None


# ---- config -------------------------------------------------------------------------------


def test_config_errors_name_the_threads_keys(monkeypatch) -> None:
    monkeypatch.delenv("SYNDICATOR_TH_ACCESS_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="needs `user_id`"):
        make_channel(ChannelConfig.model_validate({"name": "th", "type": "threads"}))
    with pytest.raises(ConfigurationError) as info:
        make_channel(
            ChannelConfig.model_validate({"name": "th", "type": "threads", "user_id": "42"})
        )
    assert info.value.env == ["SYNDICATOR_TH_ACCESS_TOKEN"]
    with pytest.raises(ValueError, match="user_id 'ann' is not a Threads user id"):
        ChannelConfig.model_validate({"name": "th", "type": "threads", "user_id": "ann"})
    with pytest.raises(ValueError, match="api_url"):
        ChannelConfig.model_validate({"name": "th", "type": "threads", "api_url": "graph"})
    with pytest.raises(ValueError, match="user_idd"):
        ChannelConfig.model_validate({"name": "th", "type": "threads", "user_idd": "1"})


def test_account_is_the_user_not_the_token(monkeypatch) -> None:
    kind = ThreadsKind()
    conf = ChannelConfig.model_validate({"name": "th", "type": "threads", "user_id": "42"})
    monkeypatch.setenv("SYNDICATOR_TH_ACCESS_TOKEN", "a")
    first = kind.account_key(conf)
    monkeypatch.setenv("SYNDICATOR_TH_ACCESS_TOKEN", "renewed")
    assert kind.account_key(conf) == first  # a renewed token is the same account
    assert "a" not in kind.endpoint(conf).split("as user")[1]


# ---- the progress on the row, and end to end ----------------------------------------------

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _settings(tmp_path: Path, url: str, site: Path, th: FakeThreads, **more: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path, url,
        sources=[{"name": "episodes", "type": "jekyll", "verify_audio": False, "path": str(site),
                  "episode_url": "{site.url}/podcast/{slug}", "guid": "{site.url}/podcast/{slug}"}],
        channels=[{"name": "threads", "type": "threads", "api_url": th.api_url,
                   "user_id": th.user_id, "timeout": "2s"}],
        announce={"window": "14d", "retry_base": "1s", "lease": "1s"},
        **more,
    )  # fmt: skip


def _rows(url: str) -> list[Delivery]:
    with session(upgrade(url)) as s:
        return [d for d in s.exec(select(Delivery)).all() if d.state != "skipped"]


def test_run_once_announces_each_recent_episode_once(
    tmp_path: Path, db_url: str, site: Path, th: FakeThreads, monkeypatch
) -> None:
    monkeypatch.setenv("SYNDICATOR_THREADS_ACCESS_TOKEN", th.token)
    (site / "_posts/podcast/2026-11-25-8-guests-on-threads.md").write_text(
        '---\ntitle: "Guests on Threads"\ndate: 2026-11-25 10:00:00 +0000\n'
        'guest: "Ana Lima"\nguest_threads: "https://www.threads.net/@ana.lima"\n---\nBody.\n'
    )
    settings = _settings(tmp_path, db_url, site, th)
    report = run_once(settings, now=NOW)
    assert report.sends.sent == 3, report.sends.events
    run_once(settings, now=NOW + timedelta(minutes=5))
    assert len(th.threads) == 3 and len(th.creates()) == 3  # never twice
    texts = [t.text for t in th.threads]
    assert any("Guests on Threads" in t and "@ana.lima" in t for t in texts), texts
    assert all(t.link and t.link in t.text for t in th.threads)  # the link card is the episode
    rows = _rows(db_url)
    assert {d.state for d in rows} == {"sent"} and len(rows) == 3
    assert {d.remote_id for d in rows} == {t.id for t in th.threads}
    assert all((d.payload or {}).get("progress", {}).get("container_id") for d in rows)


def test_the_container_id_survives_on_the_row_between_passes(
    tmp_path: Path, db_url: str, site: Path, th: FakeThreads, monkeypatch
) -> None:
    """Publishing fails after the container was made; the next pass publishes that one."""
    monkeypatch.setenv("SYNDICATOR_THREADS_ACCESS_TOKEN", th.token)
    th.fail_next(2, status=500, method="POST", path="threads_publish$")
    settings = _settings(tmp_path, db_url, site, th)
    run_once(settings, now=NOW)
    rows = _rows(db_url)
    assert {d.state for d in rows} == {"retrying"} and th.threads == []
    recorded = {d.payload["progress"]["container_id"] for d in rows}
    assert recorded == set(th.containers)
    run_once(settings, now=NOW + timedelta(minutes=10))
    assert {d.state for d in _rows(db_url)} == {"sent"}
    assert {t.container_id for t in th.threads} == recorded and len(th.creates()) == 2


def test_progress_is_saved_only_by_the_lease_holder(sqlite_url: str) -> None:
    engine = upgrade(sqlite_url)
    with session(engine, write=True) as s:
        row = Delivery(
            key="announce:1:threads", kind="announce", channel="threads", state="sending",
            text="t", payload={"url": URL}, lease_owner="me", planned_at=NOW, updated_at=NOW,
        )  # fmt: skip
        s.add(row)
        s.flush()
        rid = row.id
    assert rid is not None
    with session(engine, write=True) as s:
        assert deliveries.save_progress(s, rid, "someone-else", {"container_id": "9"}) is False
    with session(engine, write=True) as s:
        assert deliveries.save_progress(s, rid, "me", {"container_id": "7"}) is True
    with session(engine) as s:
        got = deliveries.by_id(s, rid)
        assert got is not None and got.payload == {"url": URL, "progress": {"container_id": "7"}}


def test_installing_threads_changes_no_stored_hash_but_its_handles_count() -> None:
    from syndicator.sources.base import EpisodeData, Guest

    def ep(**handles: str) -> EpisodeData:
        return EpisodeData(
            guid="g", title="T", date=datetime(2026, 1, 1, tzinfo=UTC), key="k",
            guests=[Guest(name="A", handles=dict(handles))],
        )  # fmt: skip

    from syndicator.plugins import handle_kinds
    from syndicator.sources.base import _hashed_guest

    assert "threads" in {k.name for k in handle_kinds()}
    # a guest without a Threads handle hashes as before Threads was installed
    assert "threads" not in _hashed_guest(Guest(name="A"))
    assert _hashed_guest(Guest(name="A", handles={"threads": "ann"}))["threads"] == "ann"
    assert ep().content_hash() != ep(threads="ann").content_hash()


def test_sigkill_between_the_two_steps_never_posts_twice(
    tmp_path: Path, site: Path, th: FakeThreads
) -> None:
    """`run-once` killed after a container was made, after it was recorded, and after it
    was published (answer lost): each episode is on Threads exactly once in the end."""
    import os
    import signal
    import subprocess
    import sys
    import time

    day = datetime.now(UTC) - timedelta(hours=2)
    for i in range(3):
        (site / "_posts" / "podcast" / f"{day:%Y-%m-%d}-{200 + i}-two-steps-{i}.md").write_text(
            f'---\ntitle: "Two Steps Episode {i}"\ndate: {day:%Y-%m-%d %H:%M:%S} +0000\n'
            f'category: "podcast"\n---\nBody {i}.\n'
        )
    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[database]\nurl = "sqlite:///s.db"\n[announce]\nlease = "1s"\nretry_base = "1s"\n'
        'window = "1d"\n[[sources]]\nname = "episodes"\ntype = "jekyll"\nverify_audio = false\n'
        f'path = "{site}"\nepisode_url = "{{site.url}}/podcast/{{slug}}"\n'
        f'[[channels]]\nname = "threads"\ntype = "threads"\napi_url = "{th.api_url}"\n'
        f'user_id = "{th.user_id}"\ntimeout = "20s"\n'
    )
    env = {**os.environ, **th.env("threads")}
    cmd = [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), "run-once"]

    def kill_when(path: str, count: int) -> None:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            assert th.wait_for_request("POST", path, count=count, timeout=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        time.sleep(1.2)  # the killed process's lease runs out

    th.hang_next(seconds=30, store=True, method="POST", path="/threads$")
    kill_when("/threads$", 1)  # a container exists, its id never reached the row
    th.hang_next(seconds=30, store=False, method="POST", path="threads_publish$")
    kill_when("threads_publish$", 1)  # a container recorded, not published
    th.hang_next(seconds=30, store=True, method="POST", path="threads_publish$")
    kill_when("threads_publish$", 2)  # published, the answer lost
    th.clear_faults()
    for _ in range(2):
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
    titles = sorted(t.text.split(": ", 1)[1].split(" https://")[0] for t in th.threads)
    assert titles == [f"Two Steps Episode {i}." for i in range(3)], titles
    assert len({t.container_id for t in th.threads}) == 3  # one container each, once
    orphans = [c for c in th.containers.values() if c.status != "PUBLISHED"]
    assert len(orphans) == 1  # made before the first kill, never recorded, never published
    assert len(th.requests("GET", r"^/v1.0/\d+$")) > 3  # containers' status was asked


def test_serve_runs_the_threads_fake_with_faults_over_http(monkeypatch) -> None:
    import json
    import subprocess
    import sys

    import httpx

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "--only", "threads", "--stdin"],
        cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())["threads"]
        for k, v in info["env"].items():
            monkeypatch.setenv(k, v)
        conf = ChannelConfig.model_validate({"name": "threads", "type": "threads",
                                             "api_url": info["api_url"],
                                             "user_id": info["user_id"]})  # fmt: skip
        ch = make_channel(conf, timeout=2)
        fault = {"kind": "status", "status": 503, "method": "POST", "path": "threads_publish$"}
        httpx.post(info["url"] + "/_fake/faults", json=fault).raise_for_status()
        saved = Saved()
        with pytest.raises(TransientError, match="503"):
            ch.send(post(save=saved))
        container = saved.values[0]["container_id"]
        httpx.post(
            info["url"] + f"/_fake/containers/{container}", json={"status": "EXPIRED"}
        ).raise_for_status()
        sent = ch.send(post(progress=saved.values[0]))
        seen = httpx.get(info["url"] + "/_fake/received").json()
        creates = [r for r in seen if r["method"] == "POST" and r["path"].endswith("/threads")]
        assert len(creates) == 2 and sent.remote_id  # the expired container was replaced
        assert [r["stored"] for r in seen if r["path"].endswith("threads_publish")] == [
            False, True,
        ]  # fmt: skip
        ch.close()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


# ---- image posts ----------------------------------------------------------------------------


class _Folder(FakeServer):
    """The site: serves the files under `root` (Meta fetches the card from here)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def app(self, req: Received) -> Reply:
        path = (self.root / req.path.lstrip("/")).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return Reply(404, b"", content_type="text/plain")
        return Reply(200, path.read_bytes(), content_type="image/png")


def _png(path: Path, colour: str) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (400, 300), colour).save(path)
    return path


def image_post(image: Path, url: str | None, save: Saved | None = None, **kw: Any) -> Post:
    return replace(
        post(save=save, **kw), image_file=str(image), image_sha256=_sha(image.read_bytes()),
        image_alt="Episode 107 card: Hosting Meteor Apps", image_type="image/png",
        image_url=url,
    )  # fmt: skip


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_an_image_post_is_an_image_container_meta_fetches(
    th: FakeThreads, monkeypatch, tmp_path: Path
) -> None:
    card = _png(tmp_path / "cards" / "card-107.png", "#8e44ad")
    with _Folder(tmp_path) as site:
        url = site.url + "/cards/card-107.png"
        saved = Saved()
        sent = channel(th, monkeypatch).send(image_post(card, url, saved))
    [create] = th.creates()
    form = parse_qs(create.body.decode())
    assert form["media_type"] == ["IMAGE"] and form["image_url"] == [url]
    assert form["alt_text"] == ["Episode 107 card: Hosting Meteor Apps"]
    assert form["text"] == [TEXT] and "link_attachment" not in form  # text posts only
    [thread] = th.threads
    assert thread.media_type == "IMAGE" and sent.remote_id == thread.id
    assert thread.image is not None and _sha(thread.image) == _sha(card.read_bytes())
    # the container is recorded with its image before publishing
    assert saved.values == [{"container_id": thread.container_id, "image_url": url}]


def test_an_image_container_not_ready_is_published_later_not_made_again(
    th: FakeThreads, monkeypatch, tmp_path: Path
) -> None:
    card = _png(tmp_path / "cards" / "c.png", "#16a085")
    th.image_ready_after = 1  # Meta still processing the image when publishing at once
    with _Folder(tmp_path) as site:
        ch, saved = channel(th, monkeypatch), Saved()
        p = image_post(card, site.url + "/cards/c.png", saved)
        with pytest.raises(TransientError, match="not ready") as info:
            ch.send(p)
        assert info.value.retry_after == pytest.approx(30)
        assert th.threads == []
        sent = ch.send(image_post(card, p.image_url, Saved(), progress=saved.values[-1]))
    assert len(th.creates()) == 1 and len(th.fetches) == 1  # the same container
    [thread] = th.threads
    assert sent.remote_id == thread.id and thread.media_type == "IMAGE"


def test_an_image_meta_cant_fetch_goes_out_as_text(
    th: FakeThreads, monkeypatch, tmp_path: Path, caplog
) -> None:
    card = _png(tmp_path / "cards" / "c.png", "#16a085")
    with _Folder(tmp_path / "empty") as site:  # the cards folder is not published
        ch, saved = channel(th, monkeypatch), Saved()
        p = image_post(card, site.url + "/cards/c.png", saved)
        with pytest.raises(TransientError, match="not ready"):
            ch.send(p)  # Meta's container is in ERROR: it can't be published
        with caplog.at_level("WARNING", logger="syndicator.channels.threads"):
            sent = ch.send(image_post(card, p.image_url, saved, progress=saved.values[-1]))
    [thread] = th.threads
    assert thread.media_type == "TEXT" and thread.link == URL and sent.remote_id == thread.id
    assert saved.values[-1] == {"container_id": thread.container_id, "image_failed": "UNKNOWN"}
    assert "could not use the image" in caplog.text and p.image_url in caplog.text


def test_without_a_public_url_the_post_is_text_and_says_so_once(
    th: FakeThreads, monkeypatch, tmp_path: Path, caplog
) -> None:
    card = _png(tmp_path / "cards" / "c.png", "#16a085")
    ch = channel(th, monkeypatch)
    with caplog.at_level("WARNING", logger="syndicator.channels.threads"):
        ch.send(image_post(card, None, Saved()))
        ch.send(image_post(card, None, Saved(), text="Another episode"))
    assert [t.media_type for t in th.threads] == ["TEXT", "TEXT"]
    assert all(t.link == URL for t in th.threads)
    told = [r for r in caplog.records if "public URL" in r.getMessage()]
    assert len(told) == 1 and "[cards] base_url" in told[0].getMessage()


def _card_settings(tmp_path: Path, url: str, site: Path, th: FakeThreads, **cards: Any):  # type: ignore[no-untyped-def]
    _png(tmp_path / "art.png", "#8e44ad")
    return _settings(
        tmp_path, url, site, th,
        podcast={"title": "Shipping It", "link": "https://show.example", "timezone": "UTC",
                 "feed_url": "https://show.example/podcast/feed.xml", "image": "art.png"},
        feeds=[{"name": "main", "path": "public/podcast/feed.xml"}],
        cards={"image": "card", **cards},
    )  # fmt: skip


def test_run_once_posts_the_frozen_card_and_a_retry_reuses_the_container(
    tmp_path: Path, db_url: str, site: Path, th: FakeThreads, monkeypatch
) -> None:
    """Through the outbox: the card goes out as an image post (Meta fetches the bytes the
    row froze); a publish that fails is retried with the same container, never a second."""
    monkeypatch.setenv("SYNDICATOR_THREADS_ACCESS_TOKEN", th.token)
    th.fail_next(2, status=500, method="POST", path="threads_publish$")
    with _Folder(tmp_path / "public") as web:
        settings = _card_settings(tmp_path, db_url, site, th, base_url=web.url + "/podcast/cards/")
        run_once(settings, now=NOW)
        assert {d.state for d in _rows(db_url)} == {"retrying"} and th.threads == []
        run_once(settings, now=NOW + timedelta(minutes=10))
    rows = _rows(db_url)
    assert {d.state for d in rows} == {"sent"}, [(d.state, d.last_error) for d in rows]
    assert len(th.creates()) == len(rows) == len(th.fetches) == 2  # no second container
    by_id = {d.remote_id: d for d in rows}
    for t in th.threads:
        frozen = by_id[t.id].payload
        assert t.media_type == "IMAGE" and t.image_url == frozen["image_url"]
        assert t.image is not None and _sha(t.image) == frozen["image_sha256"]
        assert t.alt_text == frozen["image_alt"] and t.alt_text.startswith("Episode ")
        assert frozen["progress"]["image_url"] == frozen["image_url"]


def test_run_once_without_a_public_card_url_posts_text_and_says_so(
    tmp_path: Path, db_url: str, site: Path, th: FakeThreads, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("SYNDICATOR_THREADS_ACCESS_TOKEN", th.token)
    settings = _card_settings(tmp_path, db_url, site, th, dir="cards")  # no base_url
    with caplog.at_level("WARNING", logger="syndicator.channels.threads"):
        report = run_once(settings, now=NOW)
    assert report.sends.sent == 2
    rows = _rows(db_url)
    assert all(d.payload["image_file"] and d.payload["image_url"] is None for d in rows)
    assert [t.media_type for t in th.threads] == ["TEXT", "TEXT"] and th.fetches == []
    told = [r.getMessage() for r in caplog.records if "public URL" in r.getMessage()]
    assert len(told) == 1 and "set [cards] base_url" in told[0]
