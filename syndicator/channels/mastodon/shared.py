"""What Mastodon's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DEFAULT_LIMIT = 500
# what the sender does with an `unknown` row: the Idempotency-Key makes a resend safe
UNKNOWN_POLICY = "idempotent"
