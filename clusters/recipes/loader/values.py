"""Plain values as Ansible reads them: lists, tags, numbers, yes/no."""

from __future__ import annotations


def as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def tag_set(value):
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(item.strip() for item in value.split(",") if item.strip())
    if isinstance(value, list):
        return frozenset(str(item) for item in value)
    return frozenset({str(value)})


def as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_bool(reader, value, source, mark, name):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "on", "1", "no", "false", "off", "0", "y", "n"):
        return value.strip().lower() in ("yes", "true", "on", "1", "y")
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str) and "{{" in value:
        reader.fallback(source, mark[0], f"a templated {name} is not native")
        return False
    reader.problem(source, mark[0], mark[1], f"{name} must be yes or no, not {value!r}.")
    return False
