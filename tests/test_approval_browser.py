"""A person in the loop, in a real browser (Debian's chromium through Playwright): a held
announcement is edited and approved on the episode's page, a pass sends it, and the page
shows it sent; the fake webhook received exactly the edited text."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import browser  # noqa: F401  (the fixture)
from test_web_support import (
    PASSWORD,
    add_delivery,
    add_episode,
    delivery_state,
    engine_for,
    running,
    wait_for,
    web_settings,
    write,
)

from syndicator.timeutil import utcnow
from tests.fakes.webhook import FakeWebhook

pytestmark = pytest.mark.browser


def test_approve_a_held_row_on_the_page_and_see_it_sent(
    browser,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import expect

    monkeypatch.setenv("SYNDICATOR_WEB_PASSWORD", PASSWORD)
    with FakeWebhook() as hook:
        channel = {
            "name": "hook", "type": "apprise", "url": f"json://127.0.0.1:{hook.port}/h",
            "approve": True, "limit": 80,
        }  # fmt: skip
        settings = web_settings(tmp_path, channels=[channel])
        engine = engine_for(settings)
        now = utcnow()
        with write(engine) as s:
            ep = add_episode(s, 9, now, title="Deploying on Fridays", date=now)
            held = add_delivery(
                s, ep, "hook", "awaiting_approval", now, due_at=now,
                skip_reason="approve = true on this channel: waits for a person",
                text="New episode: Deploying on Fridays",
            )  # fmt: skip
            ep_id, held_id = ep.id, held.id

        with running(settings) as server:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server.url + "/login")
            page.fill("#password", PASSWORD)
            page.click("#login-btn")
            expect(page.locator("#awaiting-approval")).to_contain_text("1 announcement waits")

            page.goto(f"{server.url}/episodes/{ep_id}")
            row = page.locator(f"#delivery-{held_id}")
            expect(row.locator(".state")).to_have_text("awaiting_approval")
            expect(row).to_contain_text("waits for a person")
            row.locator("textarea[name=text]").fill("Fridays, with Ada: a hand-edited post")
            row.locator("button", has_text="Save and approve").click()
            expect(page.locator(f"#delivery-{held_id} .state")).to_have_text("planned")
            assert hook.posts("/h") == []  # approved, not sent yet: a pass sends it

            page.goto(server.url + "/")
            page.click("#run-pass")
            wait_for(lambda: delivery_state(engine, held_id) == "sent", timeout=30)
            page.goto(f"{server.url}/episodes/{ep_id}")
            expect(page.locator(f"#delivery-{held_id} .state")).to_have_text("sent")
            assert [b["message"] for b in hook.bodies("/h")] == [
                "Fridays, with Ada: a hand-edited post"
            ]
            assert not problems, problems
            page.close()
