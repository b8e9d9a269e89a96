"""One pass over a real Jekyll site into a real store: identity, bad input, no-change passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from syndicator.pipeline import run_once
from syndicator.store.db import session, upgrade
from syndicator.store.models import Delivery, Episode, Problem
from tests.builders import SITE_URLS, jekyll_source, write_config
from tests.conftest import make_settings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
POSTS = "_posts/podcast"
BILLING = "2026-11-24-6-billing-for-a-saas-without-losing-sleep.md"


def _settings(tmp_path: Path, url: str, site: Path, **extra):  # type: ignore[no-untyped-def]
    return make_settings(
        tmp_path,
        url,
        sources=[
            {
                "name": "episodes",
                "type": "jekyll",
                "verify_audio": False,  # the example site's mp3 host does not exist
                "path": str(site),
                "categories": ["podcast"],
                "episode_url": "{site.url}/podcast/{slug}",
                "enclosure_url": "{site.mp3_url_path}{number}.mp3",
                "guid": "{site.url}/podcast/{slug}",
            }
        ],
        channels=[{"name": "x", "type": "twitter", "dry_run": True}],
        **extra,
    )


def _episodes(url: str) -> dict[int | None, Episode]:
    with session(upgrade(url)) as s:
        return {e.number: e for e in s.exec(select(Episode)).all()}


def test_first_pass_stores_episodes_and_skips_the_backlog(
    tmp_path: Path, db_url: str, site: Path
) -> None:
    report = run_once(_settings(tmp_path, db_url, site), now=NOW)
    eps = _episodes(db_url)
    assert set(eps) == {1, 2, 3, 4, 6, 7}  # the interview (5) is not a podcast episode
    assert eps[3].guests[0]["name"] == "Renée Lindqvist"  # mojibake repaired
    assert eps[4].withdrawn
    assert (
        eps[2].guid
        == "https://shipping-it.example/podcast/2-running-a-print-shop-on-django-and-postgresql"
    )
    with session(upgrade(db_url)) as s:
        rows = {d.episode_id: d for d in s.exec(select(Delivery)).all()}
    assert rows[eps[1].id].skip_reason.startswith("backlog")
    assert rows[eps[6].id].skip_reason.startswith("dry-run")  # recent: announced (dry-run)
    assert eps[4].id not in rows  # withdrawn: never announced
    assert report.exit_code == 0


def test_identity_survives_rename_move_and_edits(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    before = _episodes(sqlite_url)
    with session(upgrade(sqlite_url)) as s:
        n_deliveries = len(s.exec(select(Delivery)).all())

    old = site / POSTS / BILLING
    moved = site / "_posts" / "archive" / BILLING.replace("losing-sleep", "losing-sleeep")
    moved.parent.mkdir()
    text = old.read_text().replace(
        "Billing for a SaaS Without Losing Sleep", "Billing a SaaS Without Losing Sleep"
    )
    moved.write_text(text)
    old.unlink()
    run_once(settings, now=NOW)

    after = _episodes(sqlite_url)
    assert set(after) == set(before)
    assert after[6].id == before[6].id
    assert after[6].guid == before[6].guid  # never changes
    assert after[6].title == "Billing a SaaS Without Losing Sleep"
    assert after[6].path == "_posts/archive/" + moved.name
    assert not after[6].withdrawn
    with session(upgrade(sqlite_url)) as s:
        assert len(s.exec(select(Delivery)).all()) == n_deliveries  # nothing re-announced


def test_a_post_without_number_keeps_identity_when_renamed(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    post = site / POSTS / "2026-11-20-a-numberless-special.md"
    post.write_text(
        '---\ntitle: "A Special"\ncategory: "podcast"\nmp3_bytes: "100"\n'
        'mp3_duration: "2:50"\n---\nBody.\n'
    )
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    first = _episodes(sqlite_url)[None]
    post.rename(site / POSTS / "2026-11-20-a-numberless-special-edition.md")
    run_once(settings, now=NOW)
    with session(upgrade(sqlite_url)) as s:
        rows = s.exec(select(Episode).where(Episode.number.is_(None))).all()  # type: ignore[union-attr]
    assert len(rows) == 1 and rows[0].id == first.id and rows[0].guid == first.guid
    assert rows[0].slug == "a-numberless-special-edition"


def test_deleted_file_withdraws_and_nothing_is_forgotten(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    (site / POSTS / BILLING).unlink()
    run_once(settings, now=NOW)
    ep = _episodes(sqlite_url)[6]
    assert ep.withdrawn and "deleted" in (ep.withdrawn_reason or "")
    assert ep.title  # still stored


def test_a_file_turned_bad_keeps_its_data_and_reports_once(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    good = _episodes(sqlite_url)[6]
    path = site / POSTS / BILLING
    path.write_text(path.read_text().replace('mp3_duration: "1:04:21"', 'mp3_duration: "abc"'))
    report = run_once(settings, now=NOW)
    assert report.exit_code == 1
    kept = _episodes(sqlite_url)[6]
    assert kept.duration_seconds == good.duration_seconds and kept.title == good.title
    with session(upgrade(sqlite_url)) as s:
        probs = s.exec(select(Problem).where(Problem.resolved_at.is_(None))).all()  # type: ignore[union-attr]
    assert len(probs) == 1 and "abc" in probs[0].message and BILLING in probs[0].location
    run_once(settings, now=NOW)  # unchanged bad file: still one open problem
    with session(upgrade(sqlite_url)) as s:
        assert len(s.exec(select(Problem).where(Problem.resolved_at.is_(None))).all()) == 1  # type: ignore[union-attr]
    path.write_text(path.read_text().replace('mp3_duration: "abc"', 'mp3_duration: "1:04:21"'))
    assert run_once(settings, now=NOW).exit_code == 0


def test_nothing_changed_means_nothing_parsed(tmp_path: Path, sqlite_url: str, site: Path) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    os.utime(site / POSTS / BILLING)  # touched, same bytes
    report = run_once(settings, now=NOW)
    src = report.sources[0]
    assert (src.new, src.changed) == (0, 0)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syndicator.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_cli_run_once_episodes_and_status_json(tmp_path: Path, site: Path) -> None:
    write_config(
        tmp_path, jekyll_source(site, keys=SITE_URLS),
        '[[channels]]\nname = "x"\ntype = "twitter"\ndry_run = true',
        podcast='timezone = "America/New_York"',
    )  # fmt: skip
    r = _cli(["run-once", "--now", "2026-11-27T12:00:00Z", "--force"], tmp_path)
    assert r.returncode == 0, r.stderr
    eps = json.loads(_cli(["episodes", "--json"], tmp_path).stdout)
    billing = next(e for e in eps if e["number"] == 6)
    from syndicator.plugins import handle_kinds

    # every installed kind with handles shows its handle, null where the guest has none
    no_handle = {k.name: None for k in handle_kinds()}
    assert billing["guests"][0] == {
        **no_handle,
        "name": "Ayodele Bankole", "twitter": "ayobankole", "mastodon": None,
        "bluesky": "ayo.bsky.social", "website": "https://ledgerline.example",
        "avatar": "ayodele-bankole", "title": "CTO",
        "handles": {"twitter": "ayobankole", "bluesky": "ayo.bsky.social"},
        "nostr": None,  # every installed kind with handles shows its key
        "threads": None,
    }  # fmt: skip
    assert billing["date"] == "2026-11-24T14:30:00Z"
    assert billing["enclosure"]["length"] == 62914560
    assert billing["duration_seconds"] == 3861
    assert billing["history"] == []  # no identity decision was needed
    assert billing["chapters"][0]["start"] >= 0
    status = json.loads(_cli(["status", "--json"], tmp_path).stdout)
    assert status["sources"][0]["name"] == "episodes" and status["sources"][0]["ok"]
    assert status["sources"][0]["episodes"] == 6
    assert status["deliveries"]["x"]["skipped"] >= 1
    dry = _cli(["run-once", "--dry-run", "--now", "2026-11-27T12:00:00Z"], tmp_path)
    assert dry.returncode == 0 and "dry run" in dry.stdout


def test_site_config_change_reparses_but_keeps_guids(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    before = _episodes(sqlite_url)
    cfg = site / "_config.yml"
    cfg.write_text(
        cfg.read_text().replace("https://shipping-it.example", "https://shippingit.example")
    )
    run_once(settings, now=NOW)
    after = _episodes(sqlite_url)
    assert after[2].url.startswith("https://shippingit.example/")
    assert after[2].guid == before[2].guid  # identity never follows the template


def test_a_transcript_added_later_reaches_its_episode(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    folder = tmp_path / "transcripts"
    folder.mkdir()
    settings = _settings(tmp_path, sqlite_url, site)
    src = settings.sources[0]
    src.transcripts = folder
    src.transcript_url = "{site.url}/transcripts/{transcript}"
    run_once(settings, now=NOW)
    assert _episodes(sqlite_url)[6].transcript_url is None
    (folder / "6.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nHello.\n")
    run_once(settings, now=NOW)
    ep = _episodes(sqlite_url)[6]
    assert ep.transcript_url == "https://shipping-it.example/transcripts/6.vtt"
    assert ep.transcript_type == "text/vtt"


TEST_POST = "2026-11-25-8-test-post-please-ignore.md"
REAL_8 = "2026-12-21-8-scaling-postgres-for-a-newsroom.md"


def _post(title: str, date: str) -> str:
    return (
        f'---\ntitle: "{title}"\ndate: {date}\ncategory: "podcast"\nmp3_bytes: "100"\n'
        'mp3_duration: "10:00"\n---\nBody.\n'
    )


def _by_path(url: str) -> dict[str, Episode]:
    with session(upgrade(url)) as s:
        return {e.path.rsplit("/", 1)[-1]: e for e in s.exec(select(Episode)).all()}  # type: ignore[union-attr]


def _history(url: str, episode_id: int) -> list[dict[str, str]]:
    from syndicator.store.history import for_episodes
    from syndicator.store.views import episode_dict

    with session(upgrade(url)) as s:
        ep = s.get(Episode, episode_id)
        return episode_dict(ep, for_episodes(s, [episode_id]).get(episode_id))["history"]  # type: ignore[arg-type]


def test_a_reused_number_of_a_deleted_post_is_a_new_episode(
    tmp_path: Path, db_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, db_url, site)
    test_post = site / POSTS / TEST_POST
    test_post.write_text(_post("Test post, please ignore", "2026-11-25 10:00:00"))
    run_once(settings, now=NOW)
    test_post.unlink()  # pushed by mistake, deleted hours later
    run_once(settings, now=datetime(2026, 11, 27, 18, 0, tzinfo=UTC))
    (site / POSTS / REAL_8).write_text(
        _post("Scaling Postgres for a Newsroom", "2026-12-21 09:00:00")
    )
    later = datetime(2026, 12, 21, 12, 0, tzinfo=UTC)
    run_once(settings, now=later)

    eps = _by_path(db_url)
    old, new = eps[TEST_POST], eps[REAL_8]
    assert old.id != new.id and old.guid != new.guid
    assert old.withdrawn and not new.withdrawn  # the old one stays withdrawn
    assert new.title == "Scaling Postgres for a Newsroom" and new.number == 8
    assert new.guid == "https://shipping-it.example/podcast/8-scaling-postgres-for-a-newsroom"
    with session(upgrade(db_url)) as s:
        rows = s.exec(select(Delivery).where(Delivery.episode_id == new.id)).all()
    assert len(rows) == 1 and rows[0].skip_reason.startswith("dry-run")  # announced (dry-run)
    why = _history(db_url, new.id)  # type: ignore[arg-type]
    assert [h["event"] for h in why] == ["not-merged"]
    assert TEST_POST in why[0]["detail"] and "same number 8" in why[0]["detail"]
    assert [h["event"] for h in _history(db_url, old.id)] == ["number-reused"]  # type: ignore[arg-type]

    # the next edit of the new post still finds the new episode, not the old one
    post = site / POSTS / REAL_8
    post.write_text(post.read_text().replace("Body.", "Body, edited."))
    run_once(settings, now=later)
    assert _by_path(db_url)[REAL_8].id == new.id
    with session(upgrade(db_url)) as s:
        assert len(s.exec(select(Episode).where(Episode.number == 8)).all()) == 2


def test_a_deleted_post_back_with_a_padded_number_and_fixed_slug_is_the_same_episode(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    run_once(settings, now=NOW)
    before = _episodes(sqlite_url)[6]
    old = site / POSTS / BILLING
    text = old.read_text()
    old.unlink()
    run_once(settings, now=NOW)
    assert _episodes(sqlite_url)[6].withdrawn
    fixed = "2026-11-24-006-billing-for-a-saas-without-loosing-sleep.md"
    (site / "_posts" / "archive").mkdir()
    (site / "_posts" / "archive" / fixed).write_text(text)
    run_once(settings, now=NOW)
    after = _episodes(sqlite_url)[6]
    assert after.id == before.id and after.guid == before.guid
    assert not after.withdrawn
    events = [h["event"] for h in _history(sqlite_url, after.id)]  # type: ignore[arg-type]
    assert events == ["matched", "restored"]
    assert "similar slug" in _history(sqlite_url, after.id)[0]["detail"]  # type: ignore[arg-type]


def test_a_post_replaced_by_a_different_one_with_its_number_in_one_pass(
    tmp_path: Path, sqlite_url: str, site: Path
) -> None:
    settings = _settings(tmp_path, sqlite_url, site)
    test_post = site / POSTS / TEST_POST
    test_post.write_text(_post("Test post, please ignore", "2026-11-25 10:00:00"))
    run_once(settings, now=NOW)
    test_post.unlink()  # gone and replaced between two passes
    (site / POSTS / REAL_8).write_text(
        _post("Scaling Postgres for a Newsroom", "2026-12-21 09:00:00")
    )
    run_once(settings, now=NOW)
    eps = _by_path(sqlite_url)
    old, new = eps[TEST_POST], eps[REAL_8]
    assert old.id != new.id and old.withdrawn and not new.withdrawn
    assert [h["event"] for h in _history(sqlite_url, new.id)] == ["not-merged"]  # type: ignore[arg-type]
    assert "deleted" in _history(sqlite_url, new.id)[0]["detail"]  # type: ignore[arg-type]
