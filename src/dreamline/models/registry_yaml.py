"""Reading a models.yaml: its YAML, where each entry and key stands, and no key said twice.

YAML itself keeps the last of two equal keys silently; a models file refuses them (two
``sampler:`` keys in one entry, two entries with one name), naming the file, the entry, the key
and both lines.  A file that is not YAML at all is one line with the line and column where the
parser stopped, what it found there and what a models file expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dreamline.errors import ModelError

# A plain YAML value may not start with these (the parser says "cannot start any token").
_RESERVED_STARTS = ("@", "`")


@dataclass(frozen=True)
class EntryLines:
    """Where one entry stands in the file: its name's line and each of its keys' (1-based)."""

    line: int
    keys: dict[str, int] = field(default_factory=dict)

    def of(self, key: str | None) -> int:
        """The line of ``key`` in this entry, else the entry's own line."""
        return self.keys.get(key, self.line) if key is not None else self.line


@dataclass(frozen=True)
class ModelsYaml:
    """A models file's data (as ``yaml.safe_load`` gives it) and where its entries stand."""

    data: Any
    lines: dict[str, EntryLines] = field(default_factory=dict)


def _hint(problem: str) -> str:
    """What a models file expects where the parser stopped, from the parser's own words."""
    if "cannot start any token" in problem:
        if "'\\t'" in problem:
            return "expected spaces, not tabs, to indent"
        if any(f"'{start}'" in problem for start in _RESERVED_STARTS):
            return 'expected quotes around a value starting with @ or ` (path: "@builtin/demo")'
    if "mapping values are not allowed" in problem:
        return "expected quotes around a value that holds ': '"
    if problem.startswith("expected"):
        return "expected each key at its entry's indentation and every bracket and quote closed"
    return "expected a model name, then its indented 'key: value' lines (see configs/models.yaml)"


def _yaml_error(path: Path, error: yaml.YAMLError) -> ModelError:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return ModelError(f"models file {path} is not valid YAML: {error}")
    mark = error.problem_mark
    problem = (error.problem or "cannot be read").strip()
    context = ""
    if error.context and error.context_mark is not None:
        start = error.context_mark
        context = (f" ({error.context.strip()} from line {start.line + 1}, column "
                   f"{start.column + 1})")
    return ModelError(f"models file {path} is not valid YAML at line {mark.line + 1}, column "
                      f"{mark.column + 1}: {problem}{context}; {_hint(problem)}")


def _key_lines(path: Path, node: yaml.MappingNode, owner: str | None) -> dict[str, int]:
    """Each scalar key's line; a key said twice is refused (YAML would keep the last)."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key in seen:
            if owner is None:
                raise ModelError(f"models file {path}: model {key!r} is listed twice (lines "
                                 f"{seen[key]} and {line}); expected each name once")
            raise ModelError(f"models file {path}: model {owner!r} has two {key} keys (lines "
                             f"{seen[key]} and {line}; YAML would keep the last silently); "
                             f"expected one")
        seen[key] = line
    return seen


def read_models_yaml(path: Path, text: str) -> ModelsYaml:
    """Parse a models file's text; ModelError (one line) for invalid YAML or a repeated key.

    ``path`` only names the file in the messages.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(path, error) from None
    lines: dict[str, EntryLines] = {}
    if isinstance(root, yaml.MappingNode):
        names = _key_lines(path, root, None)
        for key_node, value_node in root.value:
            name = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            if name is None or name not in names:
                continue
            keys = (_key_lines(path, value_node, name)
                    if isinstance(value_node, yaml.MappingNode) else {})
            lines[name] = EntryLines(names[name], keys)
    return ModelsYaml(data, lines)
