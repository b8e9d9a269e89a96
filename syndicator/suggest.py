"""'Did you mean …?' for a word that is close to one of the known ones."""

from __future__ import annotations

import difflib


def did_you_mean(word: str, choices: list[str]) -> str:
    """' (did you mean "x" or "y"?)', or '' when nothing is close."""
    folded = {c.casefold(): c for c in choices}
    key = word.casefold().strip()
    near = [c for c in folded if key and (c.startswith(key) or key in c.split())][:3]
    near += [
        c for c in difflib.get_close_matches(key, list(folded), n=3, cutoff=0.6) if c not in near
    ]
    near = near[:3]
    if not near:
        return ""
    return " (did you mean " + " or ".join(f'"{folded[n]}"' for n in near) + "?)"
