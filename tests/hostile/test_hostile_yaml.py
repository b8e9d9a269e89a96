"""Hostile YAML: alias bombs in front matter and `_config.yml` are refused, quickly.

A bomb in a post is one "yaml" problem for that post while the good posts are read; a bomb
in `_config.yml` is one problem for the site config, not an internal error.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from syndicator.config import JekyllSourceConfig
from syndicator.sources.jekyll import load_site, scan
from syndicator.sources.yamlload import YamlTooLarge, load_bounded
from tests.hostile.conftest import run_cli, site_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site"
BAD = "_posts/podcast/2026-12-01-99-a-hostile-post.md"
GOOD = "_posts/podcast/2026-03-02-1-welcome-to-shipping-it.md"


def _laughs(levels: int = 9, width: int = 9, key: str = "x") -> str:
    """The "billion laughs": each level is a list of `width` aliases of the one before."""
    lines = ['l0: &l0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join(f'*l{i - 1}' for _ in range(width))}]")
    lines.append(f"{key}: *l{levels}")
    return "\n".join(lines) + "\n"


FRONT = """\
mp3_bytes: "1000"
mp3_duration: "10:00"
category: "podcast"
title: "A Hostile Post"
"""


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE, site)
    return site


def _cfg(site: Path, **kw: object) -> JekyllSourceConfig:
    return JekyllSourceConfig.model_validate(
        {"type": "jekyll", "name": "episodes", "path": site, **kw}
    )


@pytest.mark.parametrize(
    "front",
    [
        _laughs(),
        _laughs(levels=6, width=40),
        # long strings shared many times: few nodes, a lot of text
        'l0: &l0 "' + "x" * 60_000 + '"\n'
        "l1: &l1 [" + ", ".join("*l0" for _ in range(300)) + "]\n"
        "x: [" + ", ".join("*l1" for _ in range(300)) + "]\n",
    ],
    ids=["billion-laughs", "wide-laughs", "long-strings"],
)
def test_alias_bomb_in_front_matter_is_one_problem(tmp_path: Path, front: str) -> None:
    site = _site(tmp_path)
    (site / BAD).write_text(
        f"---\n{FRONT}{front}---\nThe body expands it: {{{{ page.x }}}}\n", encoding="utf-8"
    )
    t0 = time.monotonic()
    result = scan(_cfg(site), {})
    assert time.monotonic() - t0 < 10
    bad = [p for p in result.problems if p.location == BAD]
    assert len(bad) == 1, result.problems
    assert bad[0].kind == "yaml" and bad[0].severity == "error"
    assert "alias" in bad[0].message
    assert bad[0].line is not None and bad[0].line > 1
    files = {f.path: f.status for f in result.files}
    assert files[BAD] == "bad"
    assert files[GOOD] == "parsed"
    assert sum(s == "parsed" for s in files.values()) >= 6


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlTooLarge, match="loop"):
        load_bounded("a: &a [1, *a]\n", 1000)


def test_aliases_within_the_limit_still_load() -> None:
    data = load_bounded(_laughs(levels=3, width=4), 1000)
    assert len(data["x"]) == 4 and data["x"][0][0] == ["lol"] * 4


def test_a_long_document_without_aliases_is_not_an_alias_bomb() -> None:
    text = "tags:\n" + "".join(f"  - t{i}\n" for i in range(5000))
    assert len(load_bounded(text, 1000)["tags"]) == 5000
    with pytest.raises(YamlTooLarge, match="max_yaml_nodes"):
        load_bounded(text + "again: &a [" + ", ".join(["x"] * 600) + "]\nmore: [*a, *a]\n", 1000)


def test_max_yaml_nodes_is_a_setting(tmp_path: Path) -> None:
    site = _site(tmp_path)
    (site / BAD).write_text(f"---\n{FRONT}{_laughs(levels=3, width=10)}---\nok\n")
    files = {f.path: f.status for f in scan(_cfg(site), {}).files}
    assert files[BAD] == "parsed"  # about 1,100 values: fine by default
    result = scan(_cfg(site, max_yaml_nodes=500), {})
    (bad,) = [p for p in result.problems if p.location == BAD]
    assert "500" in bad.message and "max_yaml_nodes" in bad.message


def test_alias_bomb_in_site_config_is_a_problem_of_the_config(tmp_path: Path) -> None:
    site = _site(tmp_path)
    config = site / "_config.yml"
    config.write_text(config.read_text() + _laughs(key="bomb"), encoding="utf-8")
    t0 = time.monotonic()
    info = load_site(_cfg(site))
    assert time.monotonic() - t0 < 5
    (p,) = info.problems
    assert (p.location, p.kind, p.severity) == ("_config.yml", "yaml", "error")
    assert "alias" in p.message and "internal" not in p.message


def test_run_once_with_a_front_matter_bomb_stores_the_good_posts(tmp_path: Path) -> None:
    site = _site(tmp_path)
    (site / BAD).write_text(f"---\n{FRONT}{_laughs()}---\n{{{{ page.x }}}}\n", encoding="utf-8")
    cfg = site_config(tmp_path, site)
    t0 = time.monotonic()
    proc = run_cli(cfg, "run-once", timeout=60)
    assert time.monotonic() - t0 < 30
    assert proc.returncode in (0, 1), proc.stderr
    status = json.loads(run_cli(cfg, "status", "--json").stdout)
    problems = [p for p in status["problems"] if p["location"] == BAD]
    assert [(p["kind"], p["severity"]) for p in problems] == [("yaml", "error")]
    episodes = json.loads(run_cli(cfg, "episodes", "--json").stdout)
    assert len(episodes) >= 6
    assert not any("Hostile" in e["title"] for e in episodes)
