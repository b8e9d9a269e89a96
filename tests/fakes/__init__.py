"""Fake network services for tests: real HTTP servers on 127.0.0.1 with fault injection.

- `FakeX` (xapi.py): X API v2 tweets, me, user timeline; OAuth 1.0a checked.
- `FakeMastodon` (mastodon.py): mastodon-mock behind a fault-injecting proxy.
- `FakePDS` (pds.py): a Bluesky PDS's session, repo and identity methods.
- `FakeLinkedIn` (linkedin.py): LinkedIn's Posts API, author finder, socialActions.
- `FakeWebhook` (webhook.py): json:// / form:// receiver and Discord's webhook API.
- `FakeRelay` (nostr_relay.py): a Nostr relay, NIP-01 over WebSocket (controls over HTTP).
- `FakeThreads` (threads.py): Meta's Threads API: containers, publishing, insights.

All share `FakeServer` (base.py): `with Fake() as f:`, `f.url`, `f.received`,
`f.fail_next()`, `f.rate_limit_next()`, `f.hang_next()`, `f.drop_next()`,
`f.wait_for_request()`. `python -m tests.fakes.serve` runs them all for another process.
"""

from .base import FakeServer, Fault, Received, Reply, refused_url
from .linkedin import FakeLinkedIn
from .mastodon import FakeMastodon
from .nostr_relay import FakeRelay
from .pds import FakePDS
from .threads import FakeThreads
from .webhook import FakeWebhook
from .xapi import FakeX

__all__ = [
    "FakeLinkedIn",
    "FakeMastodon",
    "FakePDS",
    "FakeRelay",
    "FakeServer",
    "FakeThreads",
    "FakeWebhook",
    "FakeX",
    "Fault",
    "Received",
    "Reply",
    "refused_url",
]
