"""Logging: readable on a terminal, JSON lines otherwise (or as asked)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_SECRET_HINTS = ("token", "password", "secret")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key.startswith("ctx_"):
                data[key[4:]] = value
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(fmt: str = "auto", level: str = "warning") -> None:
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler: logging.Handler
    if fmt == "text" and sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    elif fmt == "text":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.WARNING))
    # Libraries log request URLs and headers at debug level; keep them quiet so no
    # token ever reaches a log line.
    for noisy in ("httpx", "httpcore", "urllib3", "requests_oauthlib", "oauthlib", "apprise"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Migrations and the scheduler narrate every step (and a coalesced misfire at
    # warning); none of it is news to the person running syndicator.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("apscheduler").setLevel(max(logging.ERROR, root.level))
