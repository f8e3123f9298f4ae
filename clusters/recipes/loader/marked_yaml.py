"""YAML read with the line and column of every mapping, sequence and key (for messages)."""

from __future__ import annotations

import yaml

from panel.lib import safe_yaml

from .errors import RecipeError, location


class LineDict(dict):
    """A mapping that remembers where it and each of its keys were written."""

    line = 0
    column = 0
    key_marks: dict

    def mark_of(self, key):
        return getattr(self, "key_marks", {}).get(key, (self.line, self.column))


class LineList(list):
    line = 0
    column = 0


class MarkedLoader(safe_yaml.SafeLoader):
    """A SafeLoader whose mappings and sequences carry their 1-based line and column."""

    def construct_mapping(self, node, deep=False):
        mapping = LineDict(super().construct_mapping(node, deep=True))
        mapping.line, mapping.column = node.start_mark.line + 1, node.start_mark.column + 1
        mapping.key_marks = {}
        for key_node, _value in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                mapping.key_marks[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            except TypeError:  # an unhashable key is reported by the mapping itself
                pass
        return mapping

    def construct_sequence(self, node, deep=False):
        items = LineList(super().construct_sequence(node, deep=True))
        items.line, items.column = node.start_mark.line + 1, node.start_mark.column + 1
        return items

    def construct_undefined(self, node):
        # Ansible's !vault and !unsafe tags: keep the value, the runner engine reads the file itself.
        if isinstance(node, yaml.ScalarNode):
            return self.construct_scalar(node)
        return None


MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, MarkedLoader.construct_mapping)
MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, MarkedLoader.construct_sequence)
MarkedLoader.add_constructor("!unsafe", MarkedLoader.construct_undefined)


def load_yaml(text, source):
    try:
        return safe_yaml.load(text, Loader=MarkedLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is not None:
            raise RecipeError(f"{location(source, mark.line + 1, mark.column + 1)}: {problem}") from None
        raise RecipeError(f"{source}: {problem}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{source}: invalid YAML ({exc})") from None


class MarkedText(str):
    """A plain string (a role name) with the line and column it was written at."""

    def __new__(cls, value, line, column):
        text = super().__new__(cls, value)
        text.line, text.column = line, column
        return text


def with_marks(data, marks, original):
    mapping = LineDict(data)
    mapping.key_marks = marks
    mapping.line, mapping.column = getattr(original, "line", 0), getattr(original, "column", 0)
    return mapping
