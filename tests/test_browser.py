"""A real browser (Debian's chromium through Playwright) drives the admin page:
log in, search, open an episode, retry a failed delivery, and watch the page
follow the store without a reload."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_support import (
    PASSWORD,
    add_delivery,
    add_episode,
    delivery_state,
    engine_for,
    running,
    seed,
    wait_for,
    web_settings,
    write,
)

from syndicator.store.models import Delivery
from syndicator.timeutil import utcnow

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("SYNDICATOR_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SHOTS = Path(os.environ.get("SYNDICATOR_SCREENSHOTS", "/tmp"))


@pytest.fixture
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        message = f"chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)  # never silently skipped in CI
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def test_retry_in_the_browser_and_see_it_live(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    settings = web_settings(tmp_path, daemon={"heartbeat": "30s"})
    engine = engine_for(settings)
    seed(engine)
    now = utcnow()
    with write(engine) as s:
        for n in range(3, 40):
            add_episode(s, n, now, title=f"Interview number {n}")
        ep = add_episode(
            s, 107, now, title="Deploying on Fridays", slug="fridays",
            enclosure_url="https://cdn.example/107.mp3", duration_seconds=6186,
            chapters=[{"start": 0, "title": "Intro"}, {"start": 160, "title": "Rollbacks"}],
            guests=[{"name": "Ada Lovelace", "twitter": "ada"}],
        )  # fmt: skip
        failed = add_delivery(
            s, ep, "masto", "failed", now, attempts=8,
            last_error="HTTP 503 from social.example: try later",
            text="🎙 New episode: Deploying on Fridays with Ada Lovelace",
        )  # fmt: skip
        add_delivery(
            s, ep, "sky", "sent", now, sent_at=now,
            remote_url="https://bsky.app/profile/show.example/post/3k",
        )  # fmt: skip
        ep_id, failed_id = ep.id, failed.id

    with running(settings) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))

        # log in
        page.goto(server.url + "/")
        expect(page).to_have_url(server.url + "/login?next=%2F")
        page.fill("#password", PASSWORD)
        page.click("#login-btn")
        expect(page.locator("#summary")).to_contain_text("Daemon")
        expect(page.locator("#live")).to_have_class("live on", timeout=5000)
        page.screenshot(path=str(SHOTS / "syndicator-dashboard.png"), full_page=True)

        # find the episode and open it
        page.click("nav >> text=Episodes")
        page.fill("#q", "fridays")
        page.press("#q", "Enter")
        expect(page.locator("#episode-list h2")).to_contain_text("1 episode")
        page.click("text=Deploying on Fridays")
        expect(page).to_have_url(f"{server.url}/episodes/{ep_id}")
        expect(page.locator("#live")).to_have_class("live on", timeout=5000)

        row = page.locator(f"#delivery-{failed_id}")
        expect(row.locator(".state")).to_have_text("failed")
        page.evaluate("window.__noReload = 'still here'")

        # retry: the row changes in place
        row.locator("button", has_text="Retry").click()
        expect(page.locator(f"#delivery-{failed_id} .state")).to_have_text("retrying")
        expect(page.locator("#flash")).to_contain_text("will be sent again")
        assert delivery_state(engine, failed_id) == "retrying"

        # the daemon (simulated) sends it: the page hears through /events
        with write(engine) as s:
            d = s.get(Delivery, failed_id)
            d.state, d.sent_at, d.updated_at = "sent", utcnow(), utcnow()
            d.remote_url, d.last_error = "https://social.example/@show/99", None
            s.add(d)
        expect(page.locator(f"#delivery-{failed_id} .state")).to_have_text("sent", timeout=6000)
        link = page.locator(f"#delivery-{failed_id} a", has_text="view the post")
        expect(link).to_have_attribute("href", "https://social.example/@show/99")
        assert page.evaluate("window.__noReload") == "still here"

        # preview the text for a channel without leaving the page
        page.select_option("select[name=channel]", "masto")
        page.click("#preview-btn")
        expect(page.locator("#preview-out")).to_contain_text("Deploying on Fridays")
        assert page.evaluate("window.__noReload") == "still here"

        page.screenshot(path=str(SHOTS / "syndicator-episode.png"), full_page=True)
        context.close()
        assert not problems, problems  # no CSP violation, no script error


def test_the_dashboard_follows_a_pass_in_the_browser(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    settings = web_settings(tmp_path, channels=[])
    seed(engine_for(settings))
    with running(settings) as server:
        page = browser.new_page()
        page.goto(server.url + "/")  # no password: no login on 127.0.0.1
        expect(page.locator("#live")).to_have_class("live on", timeout=5000)
        page.evaluate("window.__noReload = 1")
        page.click("#run-pass")
        expect(page.locator("#summary")).to_contain_text("source(s) read", timeout=10000)
        assert page.evaluate("window.__noReload") == 1
        wait_for(lambda: "Run a pass now" in page.content())
        page.close()


def test_notices_are_collapsed_and_grey_under_the_problems(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect

    from syndicator.sources.base import ProblemData
    from syndicator.store.problems import record

    monkeypatch.delenv("SYNDICATOR_WEB_PASSWORD", raising=False)
    settings = web_settings(tmp_path, channels=[])
    engine = engine_for(settings)
    seed(engine)
    with write(engine) as s:
        for n in range(106):
            notice = ProblemData(
                f"_posts/2021-03-{n:03d}-x.md", "include", "include 'x.html' dropped", 4, "notice"
            )
            record(s, "site", notice, utcnow())
    with running(settings) as server:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        card = page.locator("#summary .card", has_text="Problems")
        expect(card.locator(".big")).to_have_text("1")  # the seed's error; not 107
        expect(card).to_contain_text("106 notices")
        page.goto(server.url + "/problems")
        expect(page.locator("#problem-list h2 .count")).to_have_text("1")
        notices = page.locator("#notices")
        expect(notices.locator("summary")).to_have_text("106 notices, no action needed")
        expect(notices.locator("tr.sev-notice")).to_have_count(1)  # one group for 106 files
        expect(notices.locator("tr.sev-notice")).to_be_hidden()  # collapsed
        notices.locator("summary").click()
        expect(notices.locator("tr.sev-notice")).to_be_visible()
        expect(notices.locator("tr.sev-notice")).to_contain_text("in 106 places")
        color = notices.evaluate("e => getComputedStyle(e).color")
        assert color != page.evaluate("getComputedStyle(document.body).color")  # greyed
        page.screenshot(path=str(SHOTS / "syndicator-problems.png"), full_page=True)
        page.close()
