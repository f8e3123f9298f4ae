"""The API's JSON parser: DRF's, with a nesting limit.

Python's json decoder recurses once per level: a body nested a thousand levels deep
raises RecursionError (not a ValueError), which DRF does not turn into a 400. Here a
body nested deeper than API_JSON_MAX_DEPTH is refused before it is decoded, with a
message that says so. The scan is one pass over the bytes with `re`, not a Python loop.
"""

import io
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Strings (with their escapes) and the brackets that open or close a level.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(raw, stop_after=None):
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(raw):
        char = match.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    return deepest
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        limit = getattr(settings, "API_JSON_MAX_DEPTH", 100)
        if json_depth(raw, stop_after=limit) > limit:
            raise ParseError(f"JSON parse error - the body is nested more than {limit} levels deep (API_JSON_MAX_DEPTH).")
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - the body is nested too deeply (limit {limit} levels).") from None
