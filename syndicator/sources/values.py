"""The parts of an episode a source reads that are more than one value: a guest, a
chapter, an enclosure. sources.episode_fields declares which episode field holds which."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Guest:
    name: str
    website: str | None = None
    avatar: str | None = None
    title: str | None = None
    # the guest's handle per channel kind: {kind name: handle as the source wrote it}
    handles: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str | None:
        # `guest.<kind>` reads that kind's handle (None when the guest has none there).
        if name.startswith("_") or name == "handles":
            raise AttributeError(name)
        return self.__dict__.get("handles", {}).get(name)

    def to_dict(self) -> dict[str, Any]:
        # each handle also under its kind's name, as stored and shown before `handles`
        return {**asdict(self), **self.handles}


@dataclass
class Person:
    """A `podcast:person` of a remote item other than a guest (host, producer...)."""

    name: str
    role: str = "host"
    group: str = "cast"
    href: str | None = None
    img: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Chapter:
    start: int  # seconds
    title: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Enclosure:
    url: str
    length: int | None = None
    type: str = "audio/mpeg"
