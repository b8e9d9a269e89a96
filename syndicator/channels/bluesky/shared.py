"""What Bluesky's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DEFAULT_LIMIT = 300  # graphemes
# what the sender does with an `unknown` row: reconcile reads the record at its frozen key
UNKNOWN_POLICY = "readback"
