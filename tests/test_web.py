"""The admin pages and their actions, over HTTP against a real uvicorn server."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path

from test_web_support import (
    XSS,
    Site,
    add_delivery,
    add_episode,
    client,
    csrf_of,
    delivery_state,
    engine_for,
    running,
    seed,
    wait_for,
    web_settings,
    write,
)

from syndicator.timeutil import utcnow


def test_every_page_renders_with_the_store_data(web: Site) -> None:
    with client(web.server) as c:
        r = c.get("/")
        assert r.status_code == 200
        page = r.text
        for text in ("not running", "friends", "HTTP 503 &lt;html&gt;", "item 2 has no enclosure",
                     "pubsubhubbub.example", "bad front matter"):  # fmt: skip
            assert text in page, text
        # deliveries per channel and state link to the filtered episode list
        assert 'href="/episodes?channel=masto&amp;state=failed"' in page

        r = c.get("/episodes")
        assert r.status_code == 200 and "Shipping it with Rust" in r.text
        assert "2 episodes" in r.text

        r = c.get(f"/episodes/{web.ids['xss']}")
        assert r.status_code == 200
        ep = r.text
        assert "HTTP 500 from the instance" in ep  # the failed delivery's error
        assert "1:02:03" in ep  # duration
        assert "https://cdn.example/1.mp3" in ep and "11.8 MB" in ep
        assert "&lt;b&gt;Tools&lt;/b&gt;" in ep  # a chapter title, escaped
        assert "Filipe Névola" in ep
        assert f'action="/deliveries/{web.ids["failed"]}/retry"' in ep
        assert f'action="/deliveries/{web.ids["unknown"]}/mark-sent"' in ep
        assert f'action="/deliveries/{web.ids["sent"]}/retry"' not in ep  # nothing to retry

        r = c.get(f"/episodes/{web.ids['plain']}")
        assert 'href="https://social.example/@show/1"' in r.text  # the live post

        r = c.get("/channels")
        assert r.status_code == 200
        assert "social.example" in r.text and "quiet 22:00-07:00" in r.text
        assert "not tags private" in r.text and "at most 4 an hour" in r.text
        assert "secret-webhook-token" not in r.text  # an Apprise URL is shown by scheme only

        r = c.get("/problems")
        assert r.status_code == 200 and "_posts/2021-01-01-bad.md:3" in r.text

        assert c.get("/episodes/99999").status_code == 404
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/favicon.ico").headers["location"] == "/static/favicon.svg"


def test_a_title_with_markup_is_shown_as_text(web: Site) -> None:
    with client(web.server) as c:
        for path in (
            "/",
            "/episodes",
            f"/episodes/{web.ids['xss']}",
            "/problems",
            "/episodes?q=alert",
        ):
            html = c.get(path).text
            assert "<script>alert" not in html, path
        ep = c.get(f"/episodes/{web.ids['xss']}").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in ep
        # a remote URL that isn't http(s) never becomes a link
        assert 'href="javascript:' not in ep and "javascript:alert(2)" in ep
        lst = c.get("/episodes?q=alert").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in lst


def test_episode_search_and_filters(web: Site) -> None:
    with client(web.server) as c:
        r = c.get("/episodes", params={"q": "rust"})
        assert "Shipping it with Rust" in r.text and "1 episode" in r.text
        assert "&lt;script&gt;" not in r.text
        r = c.get("/episodes", params={"state": "failed"})
        assert "1 episode" in r.text and "&lt;script&gt;" in r.text
        r = c.get("/episodes", params={"state": "planned", "channel": "sky"})
        assert "Shipping it with Rust" in r.text and "1 episode" in r.text
        r = c.get("/episodes", params={"state": "failed", "channel": "sky"})
        assert "0 episodes" in r.text and "No episode matches" in r.text
        r = c.get("/episodes", params={"q": "2"})  # by number
        assert "Shipping it with Rust" in r.text
        r = c.get("/episodes", params={"q": "100%_"})  # LIKE wildcards are literal
        assert "0 episodes" in r.text


def test_the_episode_list_is_paginated(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    engine = engine_for(settings)
    now = utcnow()
    with write(engine) as s:
        for n in range(1, 121):
            ep = add_episode(s, n, now)
            add_delivery(s, ep, "masto", "sent" if n % 2 else "failed", now)
    with running(settings) as server, client(server) as c:
        first = c.get("/episodes").text
        assert first.count('class="title"') == 50
        assert "page 1 of 3" in first and 'href="/episodes?page=2"' in first
        assert "Episode 1<" in first and "Episode 51<" not in first  # newest first
        last = c.get("/episodes", params={"page": 3}).text
        assert last.count('class="title"') == 20 and "Episode 120<" in last
        failed = c.get("/episodes", params={"state": "failed", "page": 2}).text
        assert "60 episodes" in failed and failed.count('class="title"') == 10
        assert 'href="/episodes?state=failed" rel="prev"' in failed


def _post(c, path: str, **data: str):
    return c.post(path, data={"csrf_token": csrf_of(c), **data})


def test_delivery_actions_change_the_outbox(web: Site) -> None:
    with client(web.server) as c:
        back = f"/episodes/{web.ids['xss']}"
        r = _post(c, f"/deliveries/{web.ids['failed']}/retry", next=back)
        assert r.status_code == 303 and r.headers["location"] == back
        assert delivery_state(web.engine, web.ids["failed"]) == "retrying"
        page = c.get(back).text
        assert "will be sent again on the next pass" in page  # the flash message

        r = _post(c, f"/deliveries/{web.ids['planned']}/skip", reason="not this one")
        assert r.status_code == 303 and delivery_state(web.engine, web.ids["planned"]) == "skipped"

        # The page's script asks for JSON.
        r = c.post(
            f"/deliveries/{web.ids['unknown']}/mark-sent",
            headers={"X-CSRF-Token": csrf_of(c), "Accept": "application/json"},
        )
        assert r.status_code == 200 and r.json()["delivery"]["state"] == "sent"
        assert delivery_state(web.engine, web.ids["unknown"]) == "sent"

        # Not allowed in this state: a clear 409, nothing changes.
        r = c.post(
            f"/deliveries/{web.ids['sent']}/retry",
            headers={"X-CSRF-Token": csrf_of(c), "Accept": "application/json"},
        )
        assert r.status_code == 409 and "nothing to retry" in r.json()["error"]
        assert delivery_state(web.engine, web.ids["sent"]) == "sent"
        r = _post(c, f"/deliveries/{web.ids['sent2']}/skip")
        assert r.status_code == 409 and "can&#39;t be skipped" in r.text

        assert _post(c, f"/deliveries/{web.ids['failed']}/explode").status_code == 404
        assert _post(c, "/deliveries/98765/retry").status_code == 409


def test_mark_not_sent_queues_it_again(web: Site) -> None:
    with client(web.server) as c:
        r = _post(c, f"/deliveries/{web.ids['unknown']}/mark-not-sent")
        assert r.status_code == 303
        assert delivery_state(web.engine, web.ids["unknown"]) == "retrying"


def test_announce_now_and_preview(web: Site) -> None:
    with client(web.server) as c:
        # the plain episode's hook row is skipped (backlog): announce requeues it
        r = _post(c, f"/episodes/{web.ids['plain']}/announce", channel="hook")
        assert r.status_code == 303
        assert delivery_state(web.engine, web.ids["skipped"]) == "planned"
        page = c.get(f"/episodes/{web.ids['plain']}").text
        assert "Queued on hook" in page

        r = c.post(
            f"/episodes/{web.ids['xss']}/preview",
            data={"csrf_token": csrf_of(c), "channel": "masto"},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 200
        rows = r.json()["previews"]
        assert [p["channel"] for p in rows] == ["masto"] and XSS in rows[0]["text"]
        assert rows[0]["limit"] == 500

        # without the script: a page with the text, escaped
        r = _post(c, f"/episodes/{web.ids['xss']}/preview")
        assert r.status_code == 200
        assert r.text.count('<pre class="text">') == 3 and "<script>alert" not in r.text

        r = _post(c, f"/episodes/{web.ids['xss']}/preview", channel="nope")
        assert r.status_code == 409 and "no enabled channel" in r.text


def test_run_a_pass_now_runs_one_at_a_time(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    release = threading.Event()
    calls: list[int] = []

    def slow_pass() -> None:
        calls.append(1)
        release.wait(10)

    with running(settings, run_pass=slow_pass) as server, client(server) as c:
        r = _post(c, "/pass", next="/")
        assert r.status_code == 303 and r.headers["location"] == "/"
        wait_for(lambda: calls)
        assert "running" in c.get("/").text
        again = c.post("/api/pass", headers={"X-CSRF-Token": csrf_of(c)})
        assert again.status_code == 409 and "still running" in again.json()["error"]
        assert c.get("/api/pass").json()["running"] is True
        release.set()
        state = wait_for(lambda: (s := c.get("/api/pass").json())["finished_at"] and s)
        assert state["running"] is False and state["exit_code"] == 0 and len(calls) == 1


def test_run_a_pass_now_calls_the_real_pipeline(tmp_path: Path) -> None:
    # No sources, channels or feeds: the pass does almost nothing, but it is the real one.
    settings = web_settings(tmp_path, channels=[])
    with running(settings) as server, client(server) as c:
        r = c.post("/api/pass", headers={"X-CSRF-Token": csrf_of(c)})
        assert r.status_code == 202 and r.json()["pass"]["running"] is True
        state = wait_for(lambda: (s := c.get("/api/pass").json())["finished_at"] and s)
        assert state["error"] is None and state["exit_code"] == 0, state
        assert "0 source(s) read" in state["summary"]
        assert "0 source(s) read" in c.get("/").text


def test_a_pass_that_raises_is_shown_not_fatal(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)

    def broken() -> None:
        raise RuntimeError("disk on fire")

    with running(settings, run_pass=broken) as server, client(server) as c:
        _post(c, "/pass")
        wait_for(lambda: c.get("/api/pass").json()["finished_at"])
        assert "RuntimeError: disk on fire" in c.get("/").text
        assert c.get("/api/pass").json()["exit_code"] == 1


def test_pages_work_on_postgresql(tmp_path: Path, db_url: str) -> None:
    settings = web_settings(tmp_path, url=db_url)
    engine = engine_for(settings)
    ids = seed(engine)
    with running(settings) as server, client(server) as c:
        assert "HTTP 503 &lt;html&gt;" in c.get("/").text
        r = c.get("/episodes", params={"q": "RUST", "state": "planned"})
        assert "Shipping it with Rust" in r.text and "1 episode" in r.text
        assert "syndicator_send_latency_seconds_bucket" in c.get("/metrics").text
        assert _post(c, f"/deliveries/{ids['failed']}/retry").status_code == 303
        assert delivery_state(engine, ids["failed"]) == "retrying"
        assert re.search(
            r"syndicator_deliveries\{.*state=\"retrying\"\} 1.0", c.get("/metrics").text
        )


def test_heartbeat_shows_the_daemon_alive(web: Site) -> None:
    from test_web_support import heartbeat

    heartbeat(web.engine, timedelta(seconds=1))
    with client(web.server) as c:
        page = c.get("/").text
        assert "running" in page and "Next pass" in page


def test_notices_are_not_counted_as_problems_and_are_listed_quietly(web: Site) -> None:
    from syndicator.sources.base import ProblemData
    from syndicator.store.problems import record

    now = utcnow()
    with write(web.engine) as s:
        for n in range(30):
            record(
                s, "site",
                ProblemData(f"_posts/2021-02-{n:02d}-x.md", "liquid-tag",
                            "plugin tag {% asset_path %} dropped", 7, "notice"),
                now,
            )  # fmt: skip
    with client(web.server) as c:
        page = c.get("/").text
        card = page.split("<h3>Problems</h3>", 1)[1].split("</div>", 1)[0]
        # the seed's one error counts and colours the card; 30 notices do not
        assert '<a href="/problems">1</a>' in card and "30 notices" in card
        assert "asset_path" not in page.split('id="problems"', 1)[1]  # not in the table
        r = c.get("/problems")
        actionable, notices = r.text.split('id="notices"', 1)
        assert '<span class="count">1</span>' in actionable and "asset_path" not in actionable
        assert notices.count("asset_path") == 1  # thirty files, one grouped row
        assert "30 notices, no action needed" in notices and "in 30 places" in notices
        assert "_posts/2021-02-00-x.md:7" in notices


def test_the_episode_page_shows_why_posts_were_or_were_not_merged(web: Site) -> None:
    from syndicator.store.history import add

    with write(web.engine) as s:
        add(s, web.ids["xss"], "not-merged", f"not merged with episode #9 {XSS}", utcnow())
    with client(web.server) as c:
        page = c.get(f"/episodes/{web.ids['xss']}").text
        assert 'id="history"' in page and "not-merged" in page
        assert "not merged with episode #9 &lt;script&gt;" in page
        api = c.get("/api/episodes").json()
    assert any(h["event"] == "not-merged" for e in api["items"] for h in e["history"])


def test_a_stopped_daemon_shows_its_last_heartbeat(web: Site) -> None:
    from test_web_support import heartbeat

    from syndicator.store import leases

    heartbeat(web.engine, timedelta(minutes=2))
    leases.stopped(web.engine, "host:1:abc", utcnow() - timedelta(minutes=1), "stopped cleanly")
    with client(web.server) as c:
        page = c.get("/").text
        assert "not running" in page and "stopped cleanly" in page
        assert re.search(r"Last heartbeat <time[^>]*>", page), "the heartbeat time is shown"


def test_a_withdrawn_episode_has_no_live_announce_button(web: Site) -> None:
    with write(web.engine) as s:
        gone = add_episode(s, 40, utcnow(), withdrawn=True, withdrawn_reason="post deleted")
        gone_id = gone.id
    with client(web.server) as c:
        page = c.get(f"/episodes/{gone_id}").text
        assert "Announce now (withdrawn)" in page
        assert f'formaction="/episodes/{gone_id}/announce"' not in page
        r = _post(c, f"/episodes/{gone_id}/announce", channel="hook")
        assert r.status_code == 409 and "withdrawn" in r.text
        plain = c.get(f"/episodes/{web.ids['plain']}").text
        assert f'formaction="/episodes/{web.ids["plain"]}/announce"' in plain
