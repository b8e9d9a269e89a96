"""Rich consoles that read well on a terminal and in a pipe, cron mail or a log."""

from __future__ import annotations

import sys

from rich.console import Console

# Off a terminal no line is wrapped: a title stays on one line and a summary line is
# one line, so grep, mail and logs see whole lines.
PIPE_WIDTH = 100_000


def make_console(*, stderr: bool = False) -> Console:
    """A Console for stdout (or stderr): the terminal's width on a TTY; else no
    wrapping at all (huge width, soft wrap), plain and colourless."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, soft_wrap=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH, soft_wrap=True)
