"""Write N synthetic episode posts in the shape of a real Jekyll podcast site.

    python bench/gen_posts.py DEST N

Creates DEST/_config.yml, DEST/_includes/services-used.html and
DEST/_posts/podcast/YYYY-MM-DD-<n>-<slug>.md. The output is deterministic for a given
N: front matter with guests, handles, tags and mp3 fields; a body with Liquid (one
output split over two lines), a Topics list of chapters, links and an include; about
one post in 20 carries double-encoded (mojibake) text, as real exports do.
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from pathlib import Path

CONFIG = """\
title: "Bench Podcast"
url: "https://bench-podcast.example"
mp3_url_path: "https://bench-podcast.example/audio/bench-"
links:
  forms:
    become_guest: "https://bench-podcast.example/forms/guest"
  subscribe:
    rss: "https://bench-podcast.example/podcast/feed.xml"
author:
  name: "Bench Host"
"""

INCLUDE = """\
<ul class="services">
{% for tag in page.tags %}  <li>{{ tag }}</li>
{% endfor %}</ul>
"""

FIRST = [
    "Ada",
    "Bruno",
    "Chioma",
    "Dmitri",
    "Elif",
    "Farah",
    "Gustavo",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemi",
    "Lars",
    "Mei",
    "Nadia",
    "Omar",
    "Paula",
    "Quentin",
    "Rosa",
]
LAST = [
    "Okafor",
    "Silva",
    "Nakamura",
    "Petrov",
    "Yilmaz",
    "Haddad",
    "Costa",
    "Tanaka",
    "Moreau",
    "Berg",
    "Adeyemi",
    "Lund",
    "Chen",
    "Haddad",
    "Farouk",
    "Novak",
    "Ruiz",
]
ACCENTED = ["Renée", "José", "Zoë", "Søren", "Łukasz", "Anaïs"]
TAGS = [
    "python",
    "django",
    "flask",
    "ruby",
    "rails",
    "go",
    "rust",
    "elixir",
    "node",
    "react",
    "postgresql",
    "mysql",
    "sqlite",
    "redis",
    "docker",
    "kubernetes",
    "aws",
    "gcp",
    "azure",
    "nginx",
    "terraform",
    "ansible",
    "github-actions",
    "lets-encrypt",
    "cloudflare",
]
SENTENCE = (
    "we moved the app to a new host and kept the database where it was because the "
    "latency numbers looked fine after a week of testing with real traffic and a few "
    "retries on the client side made the remaining errors go away"
)
WORDS = SENTENCE.split()
TOPICS = [
    "High level overview of the app",
    "Why they picked this stack",
    "How deploys work",
    "Handling background jobs",
    "Monitoring and alerting",
    "Backups and restores",
    "The worst outage so far",
    "Costs and hosting",
    "Best tips for others",
    "Scaling the database",
    "Keeping dependencies up to date",
    "Testing strategy",
]


def _mojibake(s: str) -> str:
    # UTF-8 bytes read back as Mac Roman: what some export tools do to names and emoji.
    return s.encode("utf-8").decode("mac_roman")


def _clock(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    text = " ".join(_sentence(rng, rng.randint(8, 16)) for _ in range(rng.randint(3, 5)))
    words, lines, line = text.split(), [], ""
    for w in words:  # wrap at 80 columns like the real posts
        if len(line) + len(w) + 1 > 80:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


def render_post(i: int, rng: random.Random) -> tuple[str, str]:
    """(file name, text) of post number i."""
    day = date(2015, 1, 5) + timedelta(days=i)
    mojibake = i % 20 == 7
    first = rng.choice(ACCENTED) if mojibake else rng.choice(FIRST)
    guest = f"{first} {rng.choice(LAST)}"
    guest_2 = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if i % 5 == 0 else None
    tags = rng.sample(TAGS, rng.randint(4, 12))
    title = f"{rng.choice(TAGS).title()} and {rng.choice(TAGS).title()} in Production {i}"
    slug = "-".join(title.lower().split())
    duration = rng.randint(35 * 60, 105 * 60)
    shown = _mojibake(guest) if mojibake else guest

    fm = [
        "---",
        'layout: "podcast-or-interview"',
        "",
        f'mp3_bytes: "{duration * 16000}"',
        f'mp3_duration: "{_clock(duration)}"',
        "",
        f'guest: "{shown}"',
        f'guest_avatar: "{slug[:20]}"',
        f'guest_website: "https://guest{i}.example"',
        f'guest_twitter: "guest{i}"',
    ]
    if guest_2:
        fm += [f'guest_2: "{guest_2}"', f'guest_2_avatar: "guest-2-{i}"']
    fm += [
        "",
        'category: "podcast"',
        "tags:",
        *[f'  - "{t}"' for t in tags],
        "",
        f'title: "{title}"',
        "description:",
        f"  {shown} goes over running {tags[0]} and {tags[1]} in production, how it is",
        "  deployed and what they would do differently next time.",
        "---",
        "",
    ]

    body = [
        f"In this episode, {{{{ page.guest }}}} talks about {tags[0]} with {{{{ page.guest_2",
        "}} and what it took to ship it.",
        "",
    ]
    body += [_paragraph(rng), "", _paragraph(rng), "", "## Topics Include", ""]
    t = rng.randint(30, 120)
    for _ in range(rng.randint(12, 28)):
        if t >= duration - 5:  # the last chapter below must still come after this one
            break
        body.append(f"- {_clock(t)} -- {rng.choice(TOPICS)}")
        t += rng.randint(60, 420)
    body.append(
        f"- {_clock(min(t, duration - 5))} -- Check out {first} "
        "[on Twitter](https://twitter.com/{{ page.guest_twitter }})"
    )
    ref = _mojibake("📄") if mojibake else "📄"
    body += ["", "## Links", "", f"###### {ref} References", ""]
    body += [f"- <https://docs.example/{tag}>" for tag in tags[:4]]
    body += [
        "",
        "###### ⚙️ Tech Stack",
        "",
        "{% include services-used.html %}",
        "",
        "- [Become a guest]({{ site.links.forms.become_guest }})",
        "",
    ]
    name = f"{day.isoformat()}-{i}-{slug}.md"
    return name, "\n".join(fm + body)


def generate(dest: Path, n: int) -> None:
    """Write n posts (and a site config and include) under dest."""
    dest = Path(dest)
    posts = dest / "_posts" / "podcast"
    posts.mkdir(parents=True, exist_ok=True)
    (dest / "_includes").mkdir(exist_ok=True)
    (dest / "_config.yml").write_text(CONFIG, encoding="utf-8")
    (dest / "_includes" / "services-used.html").write_text(INCLUDE, encoding="utf-8")
    rng = random.Random(20261127)
    for i in range(1, n + 1):
        name, text = render_post(i, rng)
        (posts / name).write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: python bench/gen_posts.py DEST N", file=sys.stderr)
        return 2
    generate(Path(argv[1]), int(argv[2]))
    print(f"wrote {argv[2]} posts under {Path(argv[1]) / '_posts' / 'podcast'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
