"""The one way the panel reads YAML that a person gave it: PyYAML's SafeLoader with limits.

A 600-byte document of nested anchors (`a1: &a1 [*a0, *a0, ...]`, nine levels) composes into
a handful of shared nodes, but anything that walks the result (JSON encoding, a deep copy,
a line-number walk) visits 9**9 of them: gigabytes and minutes of CPU. So the composer
counts, while it builds the node tree, how many nodes the document would have once every
alias is expanded, and stops as soon as a limit is crossed: the refusal costs no more
than reading the text once.

Limits (settings, from the environment): `YAML_MAX_BYTES` (document size),
`YAML_MAX_DEPTH` (nesting), `YAML_MAX_ALIASES` (`*name` references in one document) and
`YAML_MAX_NODES` (nodes once aliases are expanded). A crossed limit raises
`YAMLLimitExceeded`, a `yaml.MarkedYAMLError` whose problem names the limit and whose
mark says where, so every existing `except yaml.MarkedYAMLError` reports it with its line.

Custom loaders (line-keeping, interpolating) subclass `SafeLoader` here instead of
`yaml.SafeLoader`; `load`, `load_all` and `compose` refuse a loader without the limits.
"""

import yaml
from yaml.events import AliasEvent

DEFAULT_LIMITS = {
    "YAML_MAX_BYTES": 2 * 1024 * 1024,
    "YAML_MAX_DEPTH": 100,
    "YAML_MAX_ALIASES": 1000,
    "YAML_MAX_NODES": 250_000,
}


def limits():
    try:
        from django.conf import settings

        return {name: int(getattr(settings, name, default)) for name, default in DEFAULT_LIMITS.items()}
    except Exception:  # outside Django (a script): the defaults
        return dict(DEFAULT_LIMITS)


class YAMLLimitExceeded(yaml.MarkedYAMLError):
    """A document crossed one of the limits; `problem` names it, `problem_mark` says where."""

    def __init__(self, problem, mark, limit):
        super().__init__(problem=problem, problem_mark=mark)
        self.limit = limit


class _TextMark(yaml.Mark):
    def __init__(self, text, index):
        index = max(0, min(index, len(text)))
        line = text.count("\n", 0, index)
        column = index - (text.rfind("\n", 0, index) + 1)
        super().__init__("<document>", index, line, column, None, None)


def _size_in_bytes(text):
    if isinstance(text, bytes):
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))


def check_size(text, max_bytes=None):
    """Raise YAMLLimitExceeded when the text is larger than YAML_MAX_BYTES."""
    max_bytes = limits()["YAML_MAX_BYTES"] if max_bytes is None else max_bytes
    if text is None or len(text) <= max_bytes // 4:
        return
    if _size_in_bytes(text) > max_bytes:
        as_text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        raise YAMLLimitExceeded(
            f"the document is larger than {max_bytes} bytes (YAML_MAX_BYTES); split it or raise the limit",
            _TextMark(as_text, max_bytes), "YAML_MAX_BYTES")


class LimitsMixin:
    """Counting composer: depth, aliases, and nodes as if every alias were expanded."""

    yaml_limits = None  # None: read the settings when the loader is created

    def __init__(self, stream):
        super().__init__(stream)
        self._limits = dict(self.yaml_limits or limits())
        self._reset_counters()

    def _reset_counters(self):
        self._depth = 0
        self._aliases = 0
        self._expanded = 0
        self._anchor_sizes = {}

    def compose_document(self):
        self._reset_counters()
        try:
            return super().compose_document()
        finally:
            self._anchor_sizes = {}

    def _refuse(self, problem, limit, mark):
        raise YAMLLimitExceeded(problem, mark, limit)

    def _count(self, size, mark):
        self._expanded += size
        if self._expanded > self._limits["YAML_MAX_NODES"]:
            self._refuse(f"the document has more than {self._limits['YAML_MAX_NODES']} nodes once its aliases are expanded "
                         "(YAML_MAX_NODES); nested anchors and aliases that multiply are refused", "YAML_MAX_NODES", mark)

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > self._limits["YAML_MAX_ALIASES"]:
                self._refuse(f"the document uses more than {self._limits['YAML_MAX_ALIASES']} aliases (YAML_MAX_ALIASES)",
                             "YAML_MAX_ALIASES", event.start_mark)
            if event.anchor in self.anchors:
                size = self._anchor_sizes.get(event.anchor)
                if size is None:
                    self._refuse(f"the alias *{event.anchor} refers to a node that contains it (a recursive alias)",
                                 "YAML_MAX_NODES", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        event = self.peek_event()
        self._depth += 1
        if self._depth > self._limits["YAML_MAX_DEPTH"]:
            self._refuse(f"the document is nested more than {self._limits['YAML_MAX_DEPTH']} levels deep (YAML_MAX_DEPTH)",
                         "YAML_MAX_DEPTH", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._anchor_sizes.pop(anchor, None)
        before = self._expanded
        self._count(1, event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if anchor is not None:
            self._anchor_sizes[anchor] = self._expanded - before
        return node


class SafeLoader(LimitsMixin, yaml.SafeLoader):
    """yaml.SafeLoader with the panel's limits. Subclass it for custom constructors."""


def limited_loader(**overrides):
    """A SafeLoader class with some limits changed (tests, benchmarks)."""
    values = {**limits(), **overrides}
    return type("LimitedSafeLoader", (SafeLoader,), {"yaml_limits": values})


def _checked(Loader):
    if not (isinstance(Loader, type) and issubclass(Loader, LimitsMixin)):
        raise TypeError("Use a loader from panel.lib.safe_yaml (it keeps the size, depth and alias limits).")
    return Loader


def _max_bytes(Loader):
    return (Loader.yaml_limits or limits())["YAML_MAX_BYTES"]


def load(text, Loader=SafeLoader):
    """One document → Python data (None for an empty text). Raises yaml.YAMLError."""
    loader = loader_for(text, Loader)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_all(text, Loader=SafeLoader):
    """Every document of a stream, as a generator. Raises yaml.YAMLError."""
    loader = loader_for(text, Loader)
    try:
        while loader.check_data():
            yield loader.get_data()
    finally:
        loader.dispose()


def compose(text, Loader=SafeLoader):
    """The node tree of one document (keeps every line and column). Raises yaml.YAMLError."""
    loader = loader_for(text, Loader)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def loader_for(text, Loader=SafeLoader):
    """A loader on the text for callers that walk documents one by one (dispose() it)."""
    _checked(Loader)
    check_size(text, _max_bytes(Loader))
    return Loader(text)


def safe_load(text):
    return load(text)


def describe(exc):
    """'line L, column C: problem' for a YAML error, for messages."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return str(problem)
