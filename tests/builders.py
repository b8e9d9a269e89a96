"""Files the tests write the same way everywhere: a syndicator.toml, a partner's feed XML.

write_config(folder, *tables, ...)   syndicator.toml: [podcast], [database], tables
jekyll_source(path, ...)             a [[sources]] table reading a Jekyll site
feed_source(url, ...)                a [[sources]] table polling a remote feed
partner_feed(...)                    a remote feed with one item, every text escaped once
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

# The example site's URL templates (its posts have no audio URL or guid of their own).
SITE_URLS = (
    'episode_url = "{site.url}/podcast/{slug}"\n'
    'enclosure_url = "{site.mp3_url_path}{number}.mp3"\n'
    'guid = "{site.url}/podcast/{slug}"'
)


def write_config(
    folder: Path,
    *tables: str,
    db_url: str = "sqlite:///s.db",
    podcast: str = "",
) -> Path:
    """`folder`/syndicator.toml: a podcast titled "Shipping It" (`podcast` adds keys to
    it), the store at `db_url`, then each of `tables` (whole TOML tables) in order."""
    cfg = folder / "syndicator.toml"
    text = f'[podcast]\ntitle = "Shipping It"\n{podcast}\n[database]\nurl = "{db_url}"\n'
    cfg.write_text(text + "".join(f"{t.strip()}\n" for t in tables), encoding="utf-8")
    return cfg


def jekyll_source(
    path: Path | str, *, keys: str = "", name: str = "episodes", verify_audio: bool = False
) -> str:
    """A [[sources]] table reading the Jekyll site at `path` (relative: from the config's
    folder); `keys` adds lines to it (e.g. SITE_URLS). The sites' mp3 hosts don't exist,
    so the audio check is off unless a test is about it."""
    check = "" if verify_audio else "verify_audio = false\n"
    return f'[[sources]]\nname = "{name}"\ntype = "jekyll"\npath = "{path}"\n{check}{keys}\n'


def feed_source(url: str, *, keys: str = "", name: str = "partner") -> str:
    """A [[sources]] table polling the remote feed at `url`; `keys` adds lines to it."""
    return f'[[sources]]\nname = "{name}"\ntype = "feed"\nurl = "{url}"\n{keys}\n'


def partner_feed(
    *, title: str, description: str, guest: str, chapters: Sequence[tuple[str, str]]
) -> bytes:
    """A remote feed with one item (guid partner-1, audio, a guest, Podlove chapters as
    (start, title)). Every text is given as meant and escaped here exactly once, as a
    correct publisher does."""

    def x(s: str) -> str:
        return html.escape(s, quote=True)

    marks = "".join(f'<psc:chapter start="{x(s)}" title="{x(t)}"/>' for s, t in chapters)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0"
  xmlns:psc="http://podlove.org/simple-chapters">
<channel><title>Partner</title><link>https://partner.example/</link>
<item>
  <title>{x(title)}</title>
  <guid>partner-1</guid>
  <pubDate>Fri, 27 Nov 2026 10:00:00 +0000</pubDate>
  <description>{x(description)}</description>
  <enclosure url="https://partner.example/1.mp3" length="1000" type="audio/mpeg"/>
  <podcast:person role="guest">{x(guest)}</podcast:person>
  <psc:chapters version="1.2">{marks}</psc:chapters>
</item>
</channel></rss>
""".encode()


def every_kind_channels(base: str) -> tuple[list[str], dict[str, str]]:
    """A live (not dry-run) [[channels]] table of every built-in kind, each pointed at
    `base` (a 127.0.0.1 URL) and with its `limit` set so building one asks no network,
    and the environment holding their secrets."""
    ws = base.replace("http://", "ws://", 1)
    tables = [
        f'[[channels]]\nname = "x"\ntype = "twitter"\napi_url = "{base}"\nlimit = 280\n',
        f'[[channels]]\nname = "toot"\ntype = "mastodon"\ninstance = "{base}"\nlimit = 500\n',
        f'[[channels]]\nname = "sky"\ntype = "bluesky"\nservice = "{base}"\n'
        'handle = "show.example.com"\nlimit = 300\n',
        f'[[channels]]\nname = "li"\ntype = "linkedin"\napi_url = "{base}"\n'
        'author = "urn:li:person:AbC123"\nlimit = 3000\n',
        f'[[channels]]\nname = "chat"\ntype = "apprise"\nurl = "json://{base[7:]}/hook"\n'
        "limit = 2000\n",
        f'[[channels]]\nname = "relay"\ntype = "nostr"\nrelays = ["{ws}"]\nlimit = 1000\n',
        f'[[channels]]\nname = "thr"\ntype = "threads"\napi_url = "{base}"\n'
        'user_id = "1234"\nlimit = 500\n',
    ]
    env = {
        **{f"SYNDICATOR_X_{k}": "v" for k in ("API_KEY", "API_SECRET", "ACCESS_TOKEN")},
        "SYNDICATOR_X_ACCESS_TOKEN_SECRET": "v",
        "SYNDICATOR_TOOT_ACCESS_TOKEN": "t",
        "SYNDICATOR_SKY_APP_PASSWORD": "p",
        "SYNDICATOR_LI_ACCESS_TOKEN": "t",
        "SYNDICATOR_RELAY_NSEC": "01" * 32,
        "SYNDICATOR_THR_ACCESS_TOKEN": "t",
    }
    return tables, env
