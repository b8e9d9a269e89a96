"""What Apprise's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DISCORD_LIMIT = 2000
# what the sender does with an `unknown` row: webhooks can't be read back: a person decides
UNKNOWN_POLICY = "none"
