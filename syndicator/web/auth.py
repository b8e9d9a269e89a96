"""Admin login: the password, signed session cookies, login rate limits.

The password comes from `$SYNDICATOR_WEB_PASSWORD` (it wins) or an argon2 hash in
`[web] password_hash` (written by `syndicator web set-password`). Sessions are
cookies signed with a secret kept in the store's `meta` table, so they survive a
restart and the secret never sits in the config file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import argon2
import sqlalchemy as sa
import tomlkit
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from tomlkit.exceptions import ParseError as TOMLKitParseError
from tomlkit.items import Table as TOMLTable

from syndicator.config import Settings, secret
from syndicator.store import admin_sessions, meta
from syndicator.store.db import session
from syndicator.timeutil import utcnow

log = logging.getLogger(__name__)

SECRET_META_KEY = "web.session_secret"
SESSION_COOKIE = "syndicator_session"
SESSION_MAX_AGE = 7 * 24 * 3600  # seconds; log in again after a week without a visit
SESSION_REFRESH = 24 * 3600  # re-sign a cookie older than this (sliding expiry)
MIN_PASSWORD_LENGTH = 8

_hasher = argon2.PasswordHasher()


class AuthConfigError(Exception):
    """The configured password can't be used; the message says how to fix it."""


class PasswordError(ValueError):
    """`write_password_hash` could not store the password; the message says why."""


# ---------------------------------------------------------------- the password


@dataclass(frozen=True)
class Credential:
    """The one admin password, as an environment value or an argon2 hash."""

    source: str  # "env" or "config"
    _plain: str = field(default="", repr=False)
    _hash: str = field(default="", repr=False)

    def verify(self, password: str) -> bool:
        if self.source == "env":
            return hmac.compare_digest(password.encode(), self._plain.encode())
        try:
            return _hasher.verify(self._hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def material(self) -> bytes:
        """What a session is bound to: changing the password ends every session."""
        if self.source == "env":
            return b"env:" + hashlib.sha256(self._plain.encode()).digest()
        return b"hash:" + self._hash.encode()


def load_credential(settings: Settings) -> Credential | None:
    """The configured password, or None (then the page serves on 127.0.0.1 only)."""
    plain = secret("web", "password")
    if plain and plain.strip():
        return Credential("env", _plain=plain)
    if plain:  # only blanks: a password nobody means to type
        log.warning("SYNDICATOR_WEB_PASSWORD holds only whitespace; treated as unset")
    h = settings.web.password_hash.strip()
    if not h:
        return None
    try:
        argon2.extract_parameters(h)
    except (argon2.exceptions.InvalidHashError, ValueError) as exc:
        raise AuthConfigError(
            "[web] password_hash is not an argon2 hash; run `syndicator web set-password` "
            "to write a new one (or set SYNDICATOR_WEB_PASSWORD)"
        ) from exc
    # Checked here, when the page starts, not at every config load: a verify costs an argon2
    # run (64 MiB, ~0.1 s) that cron's run-once should not pay.
    try:
        empty = _hasher.verify(h, "")
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        empty = False
    if empty:
        raise AuthConfigError(
            "[web] password_hash is the hash of an empty password, which would let anyone in; "
            "run `syndicator web set-password` to write a real one"
        )
    return Credential("config", _hash=h)


def hash_password(password: str) -> str:
    if not password.strip():
        raise PasswordError("the password is blank; choose one with letters, digits or signs")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordError(f"use a password of at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def write_password_hash(config_path: Path | str, password: str) -> str:
    """Store an argon2 hash of `password` as `[web] password_hash` in the TOML file.

    tomlkit edits the document in place, so comments, order and formatting of the rest
    of the file stay as they were. Returns the hash. Raises PasswordError.
    """
    path = Path(config_path)
    if not path.exists():
        raise PasswordError(f"{path} does not exist; run `syndicator init` first")
    raw = path.read_bytes().decode("utf-8")
    try:
        before = tomllib.loads(raw)
        doc = tomlkit.parse(raw)
    except (tomllib.TOMLDecodeError, TOMLKitParseError) as exc:
        raise PasswordError(f"{path} is not valid TOML ({exc}); fix it first") from exc
    hashed = hash_password(password)
    by_hand = f'add password_hash = "{hashed}" under [web] by hand'
    web = doc.get("web")
    if web is None:
        doc["web"] = tomlkit.table()
        doc["web"]["password_hash"] = hashed  # type: ignore[index]
    elif isinstance(web, TOMLTable) and not web.is_super_table():
        web["password_hash"] = hashed
    else:
        # `web` as dotted keys or an inline table: rewriting it would change its style.
        raise PasswordError(f"{path} sets `web` without a [web] table; {by_hand}")
    text = tomlkit.dumps(doc)

    # Prove the edit changed exactly one value before replacing the file.
    after = tomllib.loads(text)
    expected = dict(before)
    expected["web"] = {**before.get("web", {}), "password_hash": hashed}
    if after != expected:
        raise PasswordError(f"could not edit {path} safely; {by_hand}")
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashed


# ---------------------------------------------------------------- the session secret


def session_secret(engine: Engine) -> str:
    """The signing secret for session cookies, made once and kept in `meta`."""
    with session(engine) as s:
        value = meta.get(s, SECRET_META_KEY)
        if value is not None:
            return value
    try:
        with session(engine, write=True) as s:
            # BEGIN IMMEDIATE serializes two processes starting together: the second
            # sees the first one's row here.
            value = meta.get(s, SECRET_META_KEY)
            if value is None:
                value = secrets.token_urlsafe(48)
                meta.add(s, SECRET_META_KEY, value, utcnow())
            return value
    except sa.exc.IntegrityError:  # PostgreSQL: another process inserted it first
        with session(engine) as s:
            value = meta.get(s, SECRET_META_KEY)
            assert value is not None
            return value


# ---------------------------------------------------------------- sessions


@dataclass
class WebSession:
    """What the signed cookie holds. `modified` makes the middleware send it again."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user: bool = False
    bound: str = ""  # HMAC of the credential at login time
    flash: list[list[str]] = field(default_factory=list)  # [kind, message]
    modified: bool = True
    sid: str = ""  # the server-side session's id (ServerSessions); only when logged in
    stale: bool = False  # signed more than SESSION_REFRESH ago: re-sign, mark it seen

    def add_flash(self, kind: str, message: str) -> None:
        self.flash.append([kind, message])
        del self.flash[:-5]
        self.modified = True

    def pop_flash(self) -> list[list[str]]:
        out, self.flash = self.flash, []
        if out:
            self.modified = True
        return out

    def login(self, bound: str, sid: str) -> None:
        # A new CSRF token at login: a token seen before login is worth nothing after.
        self.csrf = secrets.token_urlsafe(32)
        self.user, self.bound, self.sid, self.modified = True, bound, sid, True

    def logout(self) -> None:
        self.csrf = secrets.token_urlsafe(32)
        self.user, self.bound, self.sid, self.modified = False, "", "", True


class SessionCodec:
    def __init__(self, secret_key: str, credential: Credential | None) -> None:
        self._s = URLSafeTimedSerializer(secret_key, salt="syndicator.web.session")
        self._key = secret_key.encode()
        self.bound = (
            hmac.new(self._key, credential.material(), hashlib.sha256).hexdigest()[:32]
            if credential
            else ""
        )

    def dumps(self, sess: WebSession) -> str:
        data = {"c": sess.csrf, "u": sess.user, "b": sess.bound, "s": sess.sid, "f": sess.flash}
        return self._s.dumps(data)

    def loads(self, cookie: str | None) -> WebSession:
        if not cookie:
            return WebSession()
        try:
            data, signed_at = self._s.loads(cookie, max_age=SESSION_MAX_AGE, return_timestamp=True)
        except BadSignature:
            return WebSession()
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return WebSession()
        sid = data.get("s") if isinstance(data.get("s"), str) else ""
        user = bool(data.get("u")) and hmac.compare_digest(str(data.get("b", "")), self.bound)
        # Only a claim: the middleware asks the store whether session `sid` still exists.
        user = user and bool(self.bound) and bool(sid)
        sess = WebSession(
            csrf=data["c"],
            user=user,
            bound=str(data.get("b", "")) if user else "",
            flash=[list(map(str, f))[:2] for f in data.get("f") or [] if isinstance(f, list)],
            modified=False,
            sid=str(sid) if user else "",
        )
        if time.time() - signed_at.timestamp() > SESSION_REFRESH:
            sess.modified = sess.stale = True
        return sess


class ServerSessions:
    """The logged-in sessions, kept in the store so that logging out ends one.

    The cookie carries a random id; the store keeps only its SHA-256, so a copy of
    the database logs nobody in. A session unseen for SESSION_MAX_AGE is over.
    """

    def __init__(self, engine: Engine, max_age: float = SESSION_MAX_AGE) -> None:
        self.engine, self.max_age = engine, max_age

    @staticmethod
    def _key(sid: str) -> str:
        return hashlib.sha256(sid.encode()).hexdigest()

    def start(self, replaces: str = "") -> str:
        """A new session id (a login); the session it replaces, if any, ends."""
        sid = secrets.token_urlsafe(32)
        now = utcnow()
        admin_sessions.create(
            self.engine,
            self._key(sid),
            now,
            replaces=self._key(replaces) if replaces else "",
            idle_before=now - timedelta(seconds=self.max_age),
        )
        return sid

    def alive(self, sid: str) -> bool:
        since = utcnow() - timedelta(seconds=self.max_age)
        return bool(sid) and admin_sessions.alive(self.engine, self._key(sid), since)

    def seen(self, sid: str) -> None:
        admin_sessions.touch(self.engine, self._key(sid), utcnow())

    def end(self, sid: str) -> None:
        if sid:
            admin_sessions.delete(self.engine, self._key(sid))


# ---------------------------------------------------------------- login rate limit


class LoginLimiter:
    """At most `max_failures` wrong passwords per client address per `window` seconds."""

    def __init__(
        self,
        max_failures: int = 5,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures, self.window, self._clock = max_failures, window, clock
        self._max_clients = max_clients
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def retry_after(self, key: str) -> float | None:
        """Seconds until this client may try again, or None when it may now."""
        with self._lock:
            now = self._clock()
            q = self._recent(key, now)
            if len(q) < self.max_failures:
                return None
            return max(q[0] + self.window - now, 1.0)

    def attempt(self, key: str) -> float | None:
        """Take one try for this client, or say how many seconds it must wait.

        Check and count are one step under the lock, so a burst of concurrent
        logins can't all pass the check before any failure is counted: the try
        counts as a failure from now on, until success() forgets this client.
        """
        with self._lock:
            now = self._clock()
            q = self._recent(key, now)
            if len(q) >= self.max_failures:
                return max(q[0] + self.window - now, 1.0)
            self._record(key, now)
            return None

    def failure(self, key: str) -> None:
        with self._lock:
            self._record(key, self._clock())

    def give_back(self, key: str) -> None:
        """Undo the last attempt(): the try was never checked (the server was busy)."""
        with self._lock:
            q = self._fails.get(key)
            if q:
                q.pop()
                if not q:
                    del self._fails[key]

    def _record(self, key: str, now: float) -> None:
        if len(self._fails) >= self._max_clients:
            for k in list(self._fails):  # forget the quiet ones; keep memory bounded
                self._recent(k, now)
        if len(self._fails) >= self._max_clients:
            self._fails.pop(next(iter(self._fails)))
        self._fails.setdefault(key, deque()).append(now)

    def success(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


class BusyError(Exception):
    """Too many logins are waiting for a password check; try again shortly."""


class LoginGate:
    """At most `workers` password checks at once and `queue` more waiting.

    An argon2 check takes 64 MiB and most of a CPU for a moment: a flood of
    logins checked all at once takes the memory of the machine. A login that
    finds the queue full is refused at once (BusyError) instead of waiting.
    Used from the event loop only, so the counters need no lock.
    """

    def __init__(self, workers: int, queue: int) -> None:
        self.workers, self.queue = max(1, workers), max(0, queue)
        self._sem = asyncio.Semaphore(self.workers)
        self._inside = 0  # running plus waiting
        self.running = 0
        self.peak = 0  # most checks that ever ran at once
        self.checked = 0
        self.refused = 0

    async def verify(self, credential: Credential, password: str) -> bool:
        if self._inside >= self.workers + self.queue:
            self.refused += 1
            raise BusyError()
        self._inside += 1
        try:
            async with self._sem:
                self.running += 1
                self.peak = max(self.peak, self.running)
                try:
                    return await run_in_threadpool(credential.verify, password)
                finally:
                    self.running -= 1
                    self.checked += 1
        finally:
            self._inside -= 1
