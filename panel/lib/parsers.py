"""The API's JSON parser: DRF's, with a nesting limit counted before decoding.

Python's json decoder recurses once per level: a body nested a thousand levels deep
raises RecursionError (not a ValueError), which DRF does not turn into a 400. Here the
body is decoded to text with the request's charset (as DRF does), its nesting is counted
by one pass of `re` over that text, and a body nested deeper than API_JSON_MAX_DEPTH is
refused with a message that says so before json sees it. The decoder therefore never
goes deeper than the limit, and no RecursionError is raised (or caught) here.

The count runs on the decoded text, not on the raw bytes: in UTF-16 a character such as
U+2200 holds the byte of a quote, and a count over the bytes would take the brackets
after it for the inside of a string.
"""

import codecs
import re

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils import json

# Strings (with their escapes) and the brackets that open or close a level. A string of
# valid JSON matches exactly where the decoder reads one, so up to the first error the
# decoder would meet, the count and the decoder agree.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def json_depth(text, stop_after=None):
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar)."""
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_after is not None and deepest > stop_after:
                    return deepest
        elif char in "]}":
            depth -= 1
    return deepest


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, get_encoding(parser_context or {}))
        except ValueError as exc:  # UnicodeDecodeError, as DRF reports it
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = getattr(settings, "API_JSON_MAX_DEPTH", 100)
        if json_depth(text, stop_after=limit) > limit:
            raise ParseError(f"JSON parse error - the body is nested more than {limit} levels deep (API_JSON_MAX_DEPTH).")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
