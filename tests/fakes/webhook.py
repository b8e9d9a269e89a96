"""A webhook receiver for Apprise: `json://`, `form://` and Discord's webhook API.

Any POST is stored and answered 200 ({"ok": true}); POST /api/webhooks/<id>/<token> is
answered the way Discord does (204, or 200 with a message when ?wait=true), so a
`discord://id/token` channel whose Discord host is pointed here (AppriseChannel's
`api_base`) runs Apprise's real Discord plugin end to end.

    with FakeWebhook() as hook:
        url = f"json://127.0.0.1:{hook.port}/announce"
        ...
        assert hook.bodies("/announce")[0]["message"] == "New episode"
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from .base import FakeServer, Received, Reply


class FakeWebhook(FakeServer):
    def rate_limit_reply(self, reset_in: float, retry_after: float | None) -> Reply:
        # Discord's shape: X-RateLimit-* (epoch reset) and retry_after in the body.
        headers = {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time() + reset_in)),
        }
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        body = {"message": "You are being rate limited.", "retry_after": reset_in, "global": False}
        return Reply(429, body, headers)

    def posts(self, path: str | None = None) -> list[Received]:
        """POSTs that were stored (not refused by an injected fault), optionally for one path."""
        return self.requests("POST", f"^{path}$" if path else None, stored=True)

    def bodies(self, path: str | None = None) -> list[Any]:
        """The decoded bodies (JSON, or form fields) of the stored POSTs."""
        out: list[Any] = []
        for r in self.posts(path):
            ctype = r.headers.get("content-type", "")
            if "json" in ctype:
                out.append(json.loads(r.body))
            elif "form" in ctype:
                out.append({k: v[0] for k, v in parse_qs(r.body.decode()).items()})
            else:
                out.append(r.body.decode("utf-8", "replace"))
        return out

    def app(self, req: Received) -> Reply:
        if req.method != "POST":
            return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        if req.path.startswith("/api/webhooks/"):
            if req.arg("wait") == "true":
                return Reply(
                    200, {"id": str(len(self.received)), "content": req.json().get("content")}
                )
            return Reply(204)
        return Reply(200, {"ok": True})
