"""Run every fake in one process, for a syndicator running elsewhere (or by hand).

    .venv/bin/python -m tests.fakes.serve [--only x,mastodon,bluesky,webhook,nostr,linkedin]
    (add `podping` to --only for a fake podping.cloud: SYNDICATOR_PODPING_TOKEN in its env)

Prints one JSON line: for each fake its base URL and the environment a channel needs
(channel names "x", "mastodon", "bluesky", "hook", "nostr", "linkedin"), then serves until
SIGTERM/SIGINT
(or, with --stdin, until stdin closes). Drive faults and read what arrived over HTTP on each fake:
GET /_fake/received, POST /_fake/faults {"kind": "drop", "count": 1, "store": true}.
Listener counts move with POST /_fake/counts on bluesky, POST /_fake/metrics and
/_fake/read_refused on x, and Mastodon's own favourite/reblog/reply API (as bob_token).
Threads too: `--only threads`, channel name "threads" (its `api_url` and `user_id` printed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from .linkedin import FakeLinkedIn
from .mastodon import FakeMastodon
from .nostr_relay import FakeRelay
from .pds import FakePDS
from .podping import FakePodping
from .threads import FakeThreads
from .webhook import FakeWebhook
from .xapi import FakeX


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.serve")
    parser.add_argument("--only", default="x,mastodon,bluesky,webhook,nostr,linkedin,threads")
    parser.add_argument(
        "--stdin", action="store_true", help="also stop when stdin closes (for a parent process)"
    )
    args = parser.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    started: list[Any] = []
    info: dict[str, Any] = {}
    if "x" in wanted:
        x = FakeX().start()
        started.append(x)
        info["x"] = {"url": x.url, "env": x.env("x"), "api_url": x.url}
    if "mastodon" in wanted:
        m = FakeMastodon().start()
        started.append(m)
        info["mastodon"] = {
            "url": m.url,
            "instance": m.url,
            "env": {"SYNDICATOR_MASTODON_ACCESS_TOKEN": m.token},
        }
    if "bluesky" in wanted:
        pds = FakePDS().start()
        started.append(pds)
        info["bluesky"] = {
            "url": pds.url,
            "service": pds.url,
            "handle": pds.handle,
            "env": pds.env("bluesky"),
        }
    if "threads" in wanted:
        th = FakeThreads().start()
        started.append(th)
        info["threads"] = {"url": th.url, "api_url": th.api_url, "user_id": th.user_id,
                           "env": th.env("threads")}  # fmt: skip
    if "webhook" in wanted:
        hook = FakeWebhook().start()
        started.append(hook)
        info["webhook"] = {"url": hook.url, "apprise_url": f"json://127.0.0.1:{hook.port}/hook"}
    if "podping" in wanted:  # not started by default: --only ...,podping
        pp = FakePodping().start()
        started.append(pp)
        info["podping"] = {"url": pp.url, "podping_url": pp.url + "/", "env": pp.env()}
    if "nostr" in wanted:  # a relay: WebSocket on ws_url, the /_fake/ controls on url
        relay = FakeRelay().start()
        started.append(relay)
        info["nostr"] = {"url": relay.url, "relays": [relay.ws_url], "env": relay.env("nostr")}
    if "linkedin" in wanted:
        li = FakeLinkedIn().start()
        started.append(li)
        info["linkedin"] = {"url": li.url, "api_url": li.url, "author": li.author,
                            "env": li.env("linkedin")}  # fmt: skip
    print(json.dumps(info), flush=True)

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    if args.stdin:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    for fake in reversed(started):
        fake.stop()


if __name__ == "__main__":
    main()
