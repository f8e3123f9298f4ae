"""Kubernetes resource quantities ("16310376Ki", "3920m", "12345678n", "1e3", "2") read as
numbers and written for people: memory in binary units ("15.6 GiB"), CPU in cores or
millicores. The parsing is the Kubernetes client's own (`kubernetes.utils.quantity`), so a
suffix reads here exactly as the API server means it."""

from decimal import Decimal, InvalidOperation

from django.utils.formats import number_format
from django.utils.translation import gettext as _, ngettext

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def parse_quantity(value):
    """The quantity as a Decimal (bytes, cores, or a plain count); None when it is not one.
    Numbers pass through, so figures already computed (cores, bytes) read the same way."""
    from kubernetes.utils.quantity import parse_quantity as parse

    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, float):
        value = Decimal(repr(value))
    try:
        parsed = parse(value)
    except (ValueError, TypeError, ArithmeticError, InvalidOperation):
        return None
    return parsed if parsed.is_finite() else None


def _number(value, places):
    """A Decimal rounded to at most `places` decimals, without trailing zeros, in the page's locale."""
    rounded = round(Decimal(value), places).normalize()
    if rounded == rounded.to_integral_value():
        rounded = rounded.quantize(Decimal(1))
    return number_format(rounded, decimal_pos=max(0, -rounded.as_tuple().exponent), use_l10n=True)


def unit_label(unit):
    labels = {
        "B": _("B"), "KiB": _("KiB"), "MiB": _("MiB"), "GiB": _("GiB"),
        "TiB": _("TiB"), "PiB": _("PiB"), "EiB": _("EiB"),
    }
    return labels[unit]


def memory_text(value):
    """'15.6 GiB' for '16310376Ki' (binary units, as Kubernetes counts memory); the value as
    given when it is not a quantity."""
    amount = parse_quantity(value)
    if amount is None:
        return "" if value is None else str(value)
    index = 0
    while abs(amount) >= 1024 and index < len(_BINARY_UNITS) - 1:
        amount /= 1024
        index += 1
    return f"{_number(amount, 1 if index else 0)}\u00a0{unit_label(_BINARY_UNITS[index])}"


def cpu_text(value):
    """'4 cores', '3.92 cores', '250 millicores' (under one core), '0' for '3920m' and alike."""
    cores = parse_quantity(value)
    if cores is None:
        return "" if value is None else str(value)
    if cores == 0:
        return "0"
    if abs(cores) < 1:
        millicores = cores * 1000
        text = _number(millicores, 1 if abs(millicores) < 10 else 0)
        return ngettext("%(n)s millicore", "%(n)s millicores", 1 if text == "1" else 2) % {"n": text}
    text = _number(cores, 2)
    return ngettext("%(n)s core", "%(n)s cores", 1 if text == "1" else 2) % {"n": text}


def quantity_text(value, resource=""):
    """A quantity shown for its resource: memory and storage as sizes, CPU as cores, any
    other (pods, counts of objects) as given. `resource` is a name like "memory",
    "requests.cpu", "limits.memory" or "requests.storage" (ResourceQuota keys)."""
    name = str(resource).rpartition(".")[2]
    if name in ("memory", "storage", "ephemeral-storage") or name.startswith("hugepages-"):
        return memory_text(value)
    if name == "cpu":
        return cpu_text(value)
    return "" if value is None else str(value)
