"""Resource quantities (``500m``, ``128Mi``, ``1.5``): parse and print.

Quota accounting and LimitRange checks compare quantities, and quota status
prints sums back, so values are kept as exact ``Fraction``s and printed in
the canonical form the API server would use for common cases.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": 1,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


class QuantityError(ValueError):
    pass


def parse(value):
    if isinstance(value, (int, float)):
        return Fraction(str(value))
    m = _RE.match(str(value).strip())
    if not m:
        raise QuantityError("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    number, suffix = Fraction(m.group(1)), m.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def fmt(value, resource=""):
    """Print a quantity the way the server canonicalises it for common values."""
    value = Fraction(value)
    if value == 0:
        return "0"
    binary = resource.endswith("memory") or resource.endswith("storage")
    if binary and value.denominator == 1:
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            if value % _BINARY[suffix] == 0:
                return f"{value // _BINARY[suffix]}{suffix}"
    if value.denominator == 1:
        n = int(value)
        for suffix, mult in (("E", 10**18), ("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
            if n % mult == 0:
                return f"{n // mult}{suffix}"
        return str(n)
    milli = value * 1000
    if milli.denominator == 1:
        return f"{int(milli)}m"
    return f"{int(value * 10**9)}n"
