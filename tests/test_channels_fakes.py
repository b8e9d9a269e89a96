"""The fakes themselves: what the lead's end-to-end and crash tests rely on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fakes import FakePDS, FakeWebhook, FakeX

ROOT = Path(__file__).resolve().parents[1]


def test_x_refuses_requests_without_oauth() -> None:
    with FakeX() as x:
        r = httpx.post(x.url + "/2/tweets", json={"text": "hi"})
        assert r.status_code == 401 and r.json()["title"] == "Unauthorized"
        assert x.tweets == []


def test_pds_put_record_is_idempotent_and_errors_have_xrpc_shape() -> None:
    with FakePDS() as pds:
        s = httpx.post(
            pds.url + "/xrpc/com.atproto.server.createSession",
            json={"identifier": pds.handle, "password": pds.password},
        ).json()
        auth = {"Authorization": f"Bearer {s['accessJwt']}"}
        record = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00Z"}
        body = {"repo": pds.did, "collection": "app.bsky.feed.post", "rkey": "3kabc2def3gh2"}
        put = pds.url + "/xrpc/com.atproto.repo.putRecord"
        a = httpx.post(put, json={**body, "record": record}, headers=auth).json()
        b = httpx.post(put, json={**body, "record": record}, headers=auth).json()
        assert (a["uri"], a["cid"]) == (b["uri"], b["cid"]) and len(pds.writes) == 1
        c = httpx.post(put, json={**body, "record": {**record, "text": "edited"}}, headers=auth)
        assert c.json()["cid"] != a["cid"] and len(pds.overwrites) == 1
        missing = httpx.get(
            pds.url + "/xrpc/com.atproto.repo.getRecord",
            params={"repo": pds.did, "collection": "app.bsky.feed.post", "rkey": "3kabc2def3gh3"},
        )
        assert missing.status_code == 400 and missing.json()["error"] == "RecordNotFound"
        assert httpx.post(put, json=body).json()["error"] == "AuthenticationRequired"


def test_faults_apply_to_the_next_matching_requests_only() -> None:
    with FakeWebhook() as hook:
        hook.fail_next(2, status=503, path="^/a$")
        assert httpx.post(hook.url + "/b").status_code == 200
        assert [httpx.post(hook.url + "/a").status_code for _ in range(3)] == [503, 503, 200]
        assert [r.stored for r in hook.requests("POST", "^/a$")] == [False, False, True]
        hook.drop_next(store=False)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(hook.url + "/c")
        assert hook.posts("/c") == []


def test_wait_for_request_sees_a_request_in_flight() -> None:
    with FakeWebhook() as hook:
        hook.hang_next(seconds=2, store=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", f"import httpx; httpx.post('{hook.url}/x', timeout=5)"]
        )
        try:
            assert hook.wait_for_request("POST", "^/x$", timeout=10)
            proc.kill()  # the client dies mid-request; the fake has already stored it
        finally:
            proc.wait()
        assert len(hook.posts("/x")) == 1 and time.monotonic() - started < 5


def test_serve_runs_the_fakes_for_another_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.serve", "--only", "webhook,x", "--stdin"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) == {"webhook", "x"}
        assert info["x"]["env"]["SYNDICATOR_X_API_KEY"]
        url = info["webhook"]["url"]
        httpx.post(url + "/_fake/faults", json={"kind": "status", "status": 503}).raise_for_status()
        assert httpx.post(url + "/hook", json={"m": 1}).status_code == 503
        assert httpx.post(url + "/hook", json={"m": 2}).status_code == 200
        seen = httpx.get(url + "/_fake/received").json()
        assert [(r["path"], r["stored"]) for r in seen] == [("/hook", False), ("/hook", True)]
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
