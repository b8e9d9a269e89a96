"""Listener counts where people read them: the dashboard (a table with SVG sparklines),
the episode's page, /metrics and `syndicator stats [--json]`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from test_web_support import Site, client, write

from syndicator.announce.listeners import ChannelWait, wait_key
from syndicator.store import counts as store_counts
from syndicator.store import meta as store_meta
from syndicator.timeutil import utcnow
from syndicator.web.sparkline import points


def _readings(web: Site) -> None:
    """Three readings of the Mastodon post (moving), one of a deleted hook post, and a
    refusal on `sky`."""
    now = utcnow()
    with write(web.engine) as s:
        for ago, counts in (
            (2, {"likes": 1, "reposts": 0, "replies": 0}),
            (1, {"likes": 3, "reposts": 1, "replies": 0}),
            (0, {"likes": 8, "reposts": 2, "replies": 1}),
        ):
            at = now - timedelta(days=ago, minutes=5)
            store_counts.add(s, web.ids["sent2"], "masto", at, counts)
        store_counts.mark_gone(s, web.ids["sent"], "hook", now - timedelta(hours=3))
        refused = ChannelWait(now + timedelta(hours=20), refused=True, reason="403 no access")
        store_meta.put(s, wait_key("sky"), refused.to_json(), now)


def _cli(tmp_path: Path, web: Site, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(
        f'[podcast]\ntitle = "Test Show"\ntimezone = "UTC"\n'
        f'[database]\nurl = "{web.settings.database.url}"\n'
        '[[channels]]\nname = "sky"\ntype = "bluesky"\nhandle = "show.example"\ndry_run = true\n'
        '[stats]\ndays = 14\nevery = "6h"\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "syndicator.cli", "--config", str(cfg), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_dashboard_shows_a_table_per_channel_with_sparklines(web: Site) -> None:
    _readings(web)
    with client(web.server) as c:
        html = c.get("/").text
    section = html[html.index('id="listener-counts"') :]
    section = section[: section.index("</table>")]
    masto = re.search(r'<tr data-channel="masto">(.*?)</tr>', section, re.S)
    assert masto, section
    cells = re.findall(r'<td class="num">(.*?)</td>', masto.group(1), re.S)
    assert [c.strip() for c in cells[:4]] == ["1", "8", "2", "1"]  # posts, likes, reposts, replies
    # interactions 1 -> 4 -> 11: rising from the bottom left to the top right, no script
    line = re.search(r'<svg class="spark"[^>]*>\s*<polyline points="([^"]+)"', masto.group(1))
    assert line, masto.group(1)
    pts = [tuple(map(float, p.split(","))) for p in line.group(1).split()]
    assert len(pts) == 3 and pts[0] == (0.0, 23.0) and pts[-1] == (120.0, 1.0)
    assert "<script" not in section and "http" not in section.replace("http://www.w3", "")
    sky = re.search(r'<tr data-channel="sky">(.*?)</tr>', section, re.S)
    assert sky and "refused" in sky.group(1) and "403 no access" in sky.group(1)


def test_the_episode_page_shows_each_posts_counts(web: Site) -> None:
    _readings(web)
    with client(web.server) as c:
        page = c.get(f"/episodes/{web.ids['plain']}").text
        other = c.get(f"/episodes/{web.ids['xss']}").text
        api = c.get(f"/api/episodes/{web.ids['plain']}").json()
    by_id = {d["id"]: d for d in api["deliveries"]}
    assert by_id[web.ids["sent2"]]["listeners"]["counts"] == {
        "likes": 8,
        "reposts": 2,
        "replies": 1,
    }
    assert by_id[web.ids["planned"]]["listeners"] is None
    block = page[page.index(f'id="delivery-{web.ids["sent2"]}"') :]
    block = block[: block.index("</article>")]
    assert re.search(r'data-count="likes"><strong>8</strong> likes', block)
    assert re.search(r'data-count="replies"><strong>1</strong> replies', block)
    assert '<svg class="spark"' in block
    assert "the post was deleted" in other


def test_metrics_sum_each_posts_latest_reading(web: Site) -> None:
    _readings(web)
    with client(web.server) as c:
        lines = set(c.get("/metrics").text.splitlines())
    assert 'syndicator_listener_counts{channel="masto",count="likes"} 8.0' in lines
    assert 'syndicator_listener_counts{channel="masto",count="reposts"} 2.0' in lines
    assert 'syndicator_listener_counts{channel="masto",count="posts"} 1.0' in lines
    assert not any('channel="hook"' in line and "listener_counts{" in line for line in lines)
    assert any(
        line.startswith('syndicator_listener_counts_read_timestamp_seconds{channel="masto"}')
        for line in lines
    )


def test_stats_command_json_and_table(tmp_path: Path, web: Site) -> None:
    _readings(web)
    r = _cli(tmp_path, web, "stats", "--json")
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    assert data["days"] == 14 and data["every"] == "6h" and data["enabled"] is True
    by = {c["channel"]: c for c in data["channels"]}
    assert set(by) == {"masto", "hook", "sky"}
    assert by["masto"]["counts"] == {"likes": 8, "reposts": 2, "replies": 1}
    assert by["masto"]["interactions"] == 11 and by["masto"]["posts"] == 1
    assert [p["interactions"] for p in by["masto"]["series"]] == [1, 4, 11]
    assert by["sky"]["refused"] == "403 no access" and by["sky"]["posts"] == 0
    post = next(p for p in data["posts"] if p["channel"] == "masto")
    assert post["delivery_id"] == web.ids["sent2"] and post["episode"] == "Shipping it with Rust"
    assert [pt["likes"] for pt in post["series"]] == [1, 3, 8] and post["gone"] is False
    assert next(p for p in data["posts"] if p["channel"] == "hook")["gone"] is True

    with client(web.server) as c:  # the API speaks the same JSON
        api = c.get("/api/stats").json()
    assert api["channels"] == data["channels"] and api["posts"] == data["posts"]

    r = _cli(tmp_path, web, "stats")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.strip("│ ").startswith("masto"))
    assert re.search(r"masto\s*│\s*1\s*│\s*8\s*│\s*2\s*│\s*1", row), row
    assert "refused: 403 no access" in r.stdout


def test_sparkline_points() -> None:
    assert points([]) == ""
    assert points([5]) == "0.0,23.0 120.0,23.0"  # one reading: a flat line
    assert points([3, 3, 3]) == "0.0,23.0 60.0,23.0 120.0,23.0"
    assert points([0, 10]) == "0.0,23.0 120.0,1.0"
    assert len(points(list(range(500))).split()) == 120  # at most one point a pixel
