"""YAML for front matter and `_config.yml`, with alias expansion bounded.

PyYAML shares an aliased node instead of copying it, so a few hundred bytes of nested
aliases ("billion laughs") load instantly and only explode later, when something walks
the data (mojibake repair, `{{ page.x }}`). Here the composed node graph is measured as
if every alias were written out, and refused past a limit, before anything is built.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~10x faster

# Expanded text is allowed this much, or twice the document when that is more.
_MIN_MAX_CHARS = 16 * 1024 * 1024


class YamlTooLarge(Exception):
    """The document expands past a limit; `line` is 0-based in the YAML text, or None."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _distinct(root: Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(_children(node))
    return len(seen)


def _check_size(root: Node, max_nodes: int, max_chars: int) -> None:
    """Count nodes and scalar characters with every alias expanded; raise past a limit.

    Aliases may add `max_nodes` values to what the document writes out (a long list of
    tags is not an alias bomb). Iterative and memoised by node: the work is linear in
    the composed graph, however far the aliases would expand.
    """
    written = _distinct(root)
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            nodes = 1
            chars = len(node.value) if isinstance(node, ScalarNode) else 0
            for child in _children(node):
                n, c = sizes[id(child)]
                nodes += n
                chars += c
            line = node.start_mark.line if node.start_mark else None
            if nodes > max_nodes + written:
                raise YamlTooLarge(
                    f"YAML aliases add over {max_nodes:,} values to it (max_yaml_nodes)",
                    line,
                )
            if chars > max_chars:
                raise YamlTooLarge(
                    f"YAML aliases expand it to over {max_chars:,} characters of text",
                    line,
                )
            sizes[key] = (nodes, chars)
            continue
        if key in sizes:
            continue
        open_nodes.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                raise YamlTooLarge(
                    "a YAML alias refers to a value that contains it (a loop)",
                    child.start_mark.line if child.start_mark else None,
                )
            if id(child) not in sizes:
                stack.append((child, False))


def load_bounded(text: str, max_nodes: int) -> Any:
    """`yaml.safe_load(text)`, refusing a document whose aliases expand past the limits.

    Raises YamlTooLarge for that, yaml.YAMLError (and ValueError for impossible dates)
    for invalid YAML.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, max_nodes, max(_MIN_MAX_CHARS, 2 * len(text)))
        return loader.construct_document(node)
    finally:
        loader.dispose()
