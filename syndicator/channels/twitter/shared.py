"""What X's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DEFAULT_LIMIT = 280
# what the sender does with an `unknown` row: reconcile reads the account's timeline
UNKNOWN_POLICY = "readback"
