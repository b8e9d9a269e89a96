"""What Threads's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DEFAULT_API_URL = "https://graph.threads.net/v1.0"
DEFAULT_LIMIT = 500
# what the sender does with an `unknown` row: reconcile reads the container and recent threads
UNKNOWN_POLICY = "readback"
