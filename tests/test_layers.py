"""The project's import rule: no import cycles, and layers only know those to their left.

    sources -> store -> announce -> channels;  directory;  web

Every module's imports are read with `ast` (function-level imports included, since
they run too) and checked against `FORBIDDEN` below. When this fails, move the code
to the layer it belongs to; do not loosen the table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "syndicator"

# The allowed direction, written down: layer -> the layers it must never import.
# `config` sits below every layer (they all read settings), so it imports none of them;
# `pipeline`, `cli`, `daemon` and the other top-level glue may use any layer.
FORBIDDEN: dict[str, frozenset[str]] = {
    "config": frozenset(
        {"sources", "store", "announce", "channels", "directory", "web", "pipeline"}
    ),
    "sources": frozenset({"store", "announce", "channels", "directory", "web", "pipeline"}),
    "store": frozenset({"announce", "channels", "directory", "web", "pipeline"}),
    "announce": frozenset({"directory", "web", "pipeline"}),
    "channels": frozenset({"sources", "store", "announce", "directory", "web", "pipeline"}),
    "directory": frozenset({"announce", "channels", "web", "pipeline"}),
}
# Nothing imports the web layer except these entry points (and web itself).
WEB_IMPORTERS = frozenset({"cli", "daemon", "web"})


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out: dict[str, Path] = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `name` imports, anywhere in its body. Imports under
    `if TYPE_CHECKING:` count too: a cycle a type checker walks is still a cycle in the
    design (break it with a Protocol on the lower side)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            targets = [source] + [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    names = set(files)
    return {name: imports_of(name, path, names) for name, path in files.items()}


def layer(module: str) -> str:
    """`syndicator.sources.feeds.poll` -> "sources"; `syndicator` -> ""."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad: list[str] = []
    for module, targets in sorted(graph.items()):
        mine = layer(module)
        for target in sorted(targets):
            theirs = layer(target)
            if theirs == mine:
                continue
            if theirs in FORBIDDEN.get(mine, ()):
                bad.append(f"{module} imports {target}: {mine} must not import {theirs}")
            elif theirs == "web" and mine not in WEB_IMPORTERS:
                bad.append(f"{module} imports {target}: only cli/daemon may import web")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_reader_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "syndicator" / "web"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "app.py").write_text("def f():\n    from . import routes\n")
    (pkg / "routes.py").write_text("from syndicator.web.app import f\n")
    (pkg / "views.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from syndicator.web import app\n"
    )
    modules = {
        "syndicator.web",
        "syndicator.web.app",
        "syndicator.web.routes",
        "syndicator.web.views",
    }
    graph = {
        f"syndicator.web.{m}": imports_of(f"syndicator.web.{m}", pkg / f"{m}.py", modules)
        for m in ("app", "routes", "views")
    }
    assert "syndicator.web.routes" in graph["syndicator.web.app"]
    assert "syndicator.web.app" in graph["syndicator.web.views"]  # a type-only import counts
    assert cycles(graph) == [["syndicator.web.app", "syndicator.web.routes"]]
    assert layer_violations({"syndicator.store.x": {"syndicator.announce.y"}}) == [
        "syndicator.store.x imports syndicator.announce.y: store must not import announce"
    ]
    assert layer_violations({"syndicator.pipeline": {"syndicator.web.app"}}) == [
        "syndicator.pipeline imports syndicator.web.app: only cli/daemon may import web"
    ]


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles (break each by moving shared code down a layer):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_imports_follow_the_layers() -> None:
    bad = layer_violations(import_graph())
    assert bad == [], "imports against the layers:\n" + "\n".join(bad)


# The pipeline (and `syndicator check`) run the kinds of source through sources/kinds.py;
# they never import one.
SOURCE_KIND_MODULES = ("syndicator.sources.jekyll", "syndicator.sources.feeds")


@pytest.mark.parametrize("module", ["syndicator.pipeline", "syndicator.checks"])
def test_sources_are_reached_only_through_their_kinds(module: str) -> None:
    graph = import_graph()
    direct = sorted(t for t in graph[module] if t.startswith(SOURCE_KIND_MODULES))
    assert direct == [], f"{module} imports a source kind itself: {direct}"
    assert "syndicator.sources.kinds" in graph[module]


def test_source_kinds_are_the_entry_points() -> None:
    import tomllib

    from syndicator.sources.kinds import BUILTIN, GROUP, load_kinds

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"][GROUP] == BUILTIN
    kinds = load_kinds()
    assert [k.type for k in kinds] == ["jekyll", "feed"]  # local reads first
    assert [k.scheduled for k in kinds] == [False, True]
