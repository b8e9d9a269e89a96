"""A fake podping.cloud: `GET /?url=<feed>&reason=<r>&medium=<m>` with the publisher
token as the Authorization header, answered as podping.cloud does.

    with FakePodping(token="pp-secret") as pp:
        ... podping_url = pp.url + "/" ...
        assert [r.arg("url") for r in pp.pings()] == [feed_url]

200 "Success!" for a good request; 401 for a missing or wrong token; 400 when `url`
is missing or `reason`/`medium` is not one podping knows. Faults as in base.py.
"""

from __future__ import annotations

from .base import FakeServer, Received, Reply

REASONS = {"update", "live", "liveEnd"}
MEDIUMS = {"podcast", "music", "video", "film", "audiobook", "newsletter", "blog",
           "publisher", "course"}  # fmt: skip


class FakePodping(FakeServer):
    def __init__(self, *, token: str = "podping-token") -> None:
        super().__init__()
        self.token = token

    def env(self) -> dict[str, str]:
        return {"SYNDICATOR_PODPING_TOKEN": self.token}

    def pings(self) -> list[Received]:
        """The pings it acted on (a 200), oldest first."""
        return [
            r
            for r in self.requests("GET", r"^/$", stored=True)
            if r.headers.get("authorization") == self.token and r.arg("url")
        ]

    def app(self, req: Received) -> Reply:
        if req.method != "GET" or req.path != "/":
            return Reply(404, "Not found", content_type="text/plain")
        if req.headers.get("authorization") != self.token:
            return Reply(401, "Unauthorized", content_type="text/plain")
        medium = req.arg("medium") or "podcast"
        if not req.arg("url") or (req.arg("reason") or "update") not in REASONS:
            return Reply(400, "Bad request: url and a known reason are required",
                         content_type="text/plain")  # fmt: skip
        if medium.removesuffix("L") not in MEDIUMS and medium != "mixed":
            return Reply(400, f"Bad request: unknown medium {medium}", content_type="text/plain")
        return Reply(200, "Success!", content_type="text/plain")
