"""A Mastodon instance for tests: mastodon-mock behind a fault-injecting HTTP proxy.

mastodon-mock (PyPI) is a stateful Mastodon API server: it stores statuses, honours the
Idempotency-Key header (same key, same status) and answers 401/422 like Mastodon. What
it can't do is lose an answer after storing a post, so `FakeMastodon` puts the common
`FakeServer` proxy in front of it: every request is forwarded to the mock unless a fault
says otherwise (`drop_next()` stores through the mock, then closes the connection).

    with FakeMastodon() as m:             # seeded accounts alice/bob/carol
        url, token = m.url, m.token       # "alice_token"
        m.max_characters = 1000           # what /api/v1|v2/instance advertise
        m.favourite(sid, by="bob"); m.reblog(sid, by="carol"); m.reply(sid)  # counts move
        assert [s["content"] for s in m.statuses()] == ["<p>hello</p>"]

The mock's own fault API (/api/v1/_mock/faults) stays reachable through the proxy.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from mastodon_mock.testing import MockServer

from .base import FakeServer, Received, Reply

# Hop-by-hop and length headers are the proxy's own business.
_SKIP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "date",
    "server",
}


class FakeMastodon(FakeServer):
    def __init__(self, *, username: str = "alice") -> None:
        super().__init__()
        self.upstream = MockServer()
        self.username = username
        self.token = f"{username}_token"
        self.max_characters: int | None = None  # None: the mock's own 500
        self._http = requests.Session()

    def start(self) -> FakeMastodon:
        self.upstream.start()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        self.upstream.stop()
        self._http.close()

    def reset(self) -> None:
        """Back to the seeded accounts with no statuses; faults and the log cleared."""
        self._http.post(
            self.upstream.base_url + "/api/v1/_mock/reset", timeout=10
        ).raise_for_status()
        with self.lock:
            self.received.clear()
            self.clear_faults()
        self.max_characters = None

    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        reset = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + reset_in))
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        return Reply(429, {"error": "Too many requests"}, headers)

    # ---- reading the instance ------------------------------------------------------------

    def statuses(self, username: str | None = None) -> list[dict[str, Any]]:
        """The account's statuses, newest first, straight from the mock."""
        token = f"{username}_token" if username else self.token
        auth = {"Authorization": f"Bearer {token}"}
        me = self._http.get(
            self.upstream.base_url + "/api/v1/accounts/verify_credentials", headers=auth, timeout=10
        ).json()
        resp = self._http.get(
            self.upstream.base_url + f"/api/v1/accounts/{me['id']}/statuses",
            params={"limit": 40},
            headers=auth,
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    # ---- what listeners do (counts move for real: the mock counts favourites etc.) ---------

    def _as(self, username: str, method: str, path: str, **data: Any) -> dict[str, Any]:
        resp = self._http.request(
            method,
            self.upstream.base_url + path,
            headers={"Authorization": f"Bearer {username}_token"},
            data=data or None,
            timeout=10,
        )
        resp.raise_for_status()
        return resp.json()

    def favourite(self, status_id: str, *, by: str = "bob") -> None:
        self._as(by, "POST", f"/api/v1/statuses/{status_id}/favourite")

    def reblog(self, status_id: str, *, by: str = "bob") -> None:
        self._as(by, "POST", f"/api/v1/statuses/{status_id}/reblog")

    def reply(self, status_id: str, text: str = "great episode", *, by: str = "bob") -> None:
        self._as(by, "POST", "/api/v1/statuses", status=text, in_reply_to_id=status_id)

    def delete_status(self, status_id: str) -> None:
        """Delete one of the account's statuses (GET answers 404 after)."""
        self._as(self.username, "DELETE", f"/api/v1/statuses/{status_id}")

    def posts(self) -> list[Received]:
        """Every POST /api/v1/statuses that reached the proxy."""
        return self.requests("POST", r"^/api/v1/statuses$")

    # ---- the proxy -----------------------------------------------------------------------

    def app(self, req: Received) -> Reply:
        url = self.upstream.base_url + req.path + (f"?{req.raw_query}" if req.raw_query else "")
        headers = {k: v for k, v in req.headers.items() if k not in _SKIP and k != "host"}
        resp = self._http.request(req.method, url, headers=headers, data=req.body, timeout=30)
        out = {k: v for k, v in resp.headers.items() if k.lower() not in _SKIP}
        ctype = out.pop("content-type", None) or out.pop("Content-Type", "application/json")
        body: Any = resp.content
        if self.max_characters is not None and req.path.rstrip("/") in (
            "/api/v1/instance",
            "/api/v2/instance",
        ):
            data = resp.json()
            data.setdefault("configuration", {}).setdefault("statuses", {})
            data["configuration"]["statuses"]["max_characters"] = self.max_characters
            body = data
            ctype = "application/json; charset=utf-8"
        return Reply(resp.status_code, body, out, content_type=ctype)
