"""Apple Podcasts' category list (with sub-categories) and parsing of config values.

A category is written in the config as "Category" or "Category > Sub-category"
(the spelling we store and show); "Category/Sub-category" is accepted too.
Matching ignores case and spacing around the separator; the stored value uses
Apple's own spelling.
"""

from __future__ import annotations

import re

from syndicator.suggest import did_you_mean

# https://podcasters.apple.com/support/1691-apple-podcasts-categories (the 2019 list,
# still current). Order and spelling as Apple writes them; "&" is escaped by the XML writer.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": (
        "Books",
        "Design",
        "Fashion & Beauty",
        "Food",
        "Performing Arts",
        "Visual Arts",
    ),
    "Business": (
        "Careers",
        "Entrepreneurship",
        "Investing",
        "Management",
        "Marketing",
        "Non-Profit",
    ),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": (
        "Alternative Health",
        "Fitness",
        "Medicine",
        "Mental Health",
        "Nutrition",
        "Sexuality",
    ),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": (
        "Animation & Manga",
        "Automotive",
        "Aviation",
        "Crafts",
        "Games",
        "Hobbies",
        "Home & Garden",
        "Video Games",
    ),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": (
        "Business News",
        "Daily News",
        "Entertainment News",
        "News Commentary",
        "Politics",
        "Sports News",
        "Tech News",
    ),
    "Religion & Spirituality": (
        "Buddhism",
        "Christianity",
        "Hinduism",
        "Islam",
        "Judaism",
        "Religion",
        "Spirituality",
    ),
    "Science": (
        "Astronomy",
        "Chemistry",
        "Earth Sciences",
        "Life Sciences",
        "Mathematics",
        "Natural Sciences",
        "Nature",
        "Physics",
        "Social Sciences",
    ),
    "Society & Culture": (
        "Documentary",
        "Personal Journals",
        "Philosophy",
        "Places & Travel",
        "Relationships",
    ),
    "Sports": (
        "Baseball",
        "Basketball",
        "Cricket",
        "Fantasy Sports",
        "Football",
        "Golf",
        "Hockey",
        "Rugby",
        "Running",
        "Soccer",
        "Swimming",
        "Tennis",
        "Volleyball",
        "Wilderness",
        "Wrestling",
    ),
    "Technology": (),
    "True Crime": (),
    "TV & Film": (
        "After Shows",
        "Film History",
        "Film Interviews",
        "Film Reviews",
        "TV Reviews",
    ),
}

SEPARATOR = " > "
FORMAT_HELP = (
    'write "Category" or "Category > Sub-category", e.g. "Technology" or "News > Tech News" '
    '("Category/Sub-category" works too); see Apple Podcasts\' category list'
)

_TOP = {name.casefold(): name for name in CATEGORIES}
_SUBS = {top: {s.casefold(): s for s in subs} for top, subs in CATEGORIES.items()}
_SUB_PARENT = {s.casefold(): top for top, subs in CATEGORIES.items() for s in subs}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("&amp;", "&")).strip().casefold()


_suggest = did_you_mean  # one helper for every "did you mean"


def parse_category(value: str) -> tuple[str, str | None]:
    """Parse "Category", "Category > Sub" or "Category/Sub" into Apple's spelling.

    Raises ValueError with a message that says how to fix the value.
    """
    parts = re.split(r"\s*(?:>|/)\s*", value.strip())
    if not parts or not parts[0] or len(parts) > 2 or (len(parts) == 2 and not parts[1]):
        raise ValueError(f"invalid Apple Podcasts category {value!r}: {FORMAT_HELP}")
    top = _TOP.get(_norm(parts[0]))
    if top is None:
        hint = ""
        if len(parts) == 1 and _norm(parts[0]) in _SUB_PARENT:
            parent = _SUB_PARENT[_norm(parts[0])]
            sub = _SUBS[parent][_norm(parts[0])]
            hint = f' (it is a sub-category: write "{parent}{SEPARATOR}{sub}")'
        else:
            hint = _suggest(parts[0], list(CATEGORIES))
        raise ValueError(f"unknown Apple Podcasts category {parts[0]!r}{hint}: {FORMAT_HELP}")
    if len(parts) == 1:
        return top, None
    sub = _SUBS[top].get(_norm(parts[1]))
    if sub is None:
        subs = CATEGORIES[top]
        if not subs:
            raise ValueError(
                f'Apple Podcasts category {top!r} has no sub-categories; write just "{top}"'
            )
        hint = _suggest(parts[1], list(subs))
        raise ValueError(
            f"{parts[1]!r} is not a sub-category of {top!r}{hint}; "
            f"its sub-categories are: {', '.join(subs)}"
        )
    return top, sub


def normalize_category(value: str) -> str:
    """The stored spelling: "Category" or "Category > Sub-category" (ValueError if unknown)."""
    top, sub = parse_category(value)
    return top if sub is None else f"{top}{SEPARATOR}{sub}"


def is_category(top: str, sub: str | None = None) -> bool:
    """Exact check (as written in a feed): is `top` (with `sub`) on Apple's list?"""
    if top not in CATEGORIES:
        return False
    return sub is None or sub in CATEGORIES[top]
