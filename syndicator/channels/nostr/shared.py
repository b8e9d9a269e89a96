"""What Nostr's kind (the package) and its client (client.py) both use, so the
client never imports the kind.
"""

from __future__ import annotations

DEFAULT_LIMIT = 1000  # Nostr has no hard limit; long notes read badly in clients
# what the sender does with an `unknown` row: the note is signed once; relays answer "duplicate"
UNKNOWN_POLICY = "idempotent"


def event_uri(event_id: str, author: str | None, relays: list[str]) -> str:
    """`nostr:nevent1…` (NIP-19/21) with the author and relay hints, for links and feeds."""
    from nostr_sdk import EventId, Kind, Nip19Event, NostrSdkError, PublicKey, RelayUrl

    pk = PublicKey.parse(author) if author else None
    hints: list[RelayUrl] = []
    for r in relays[:3]:
        try:
            hints.append(RelayUrl.parse(r))
        except NostrSdkError:
            continue
    return Nip19Event(EventId.parse(event_id), pk, Kind(1), hints).to_nostr_uri()
