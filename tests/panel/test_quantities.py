"""Kubernetes quantities read as numbers and written for people."""

from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from panel.lib.quantities import cpu_text, memory_text, parse_quantity, quantity_text


@pytest.mark.parametrize("text, number", [
    ("16310376Ki", Decimal(16310376 * 1024)),
    ("64Mi", Decimal(64 * 1024**2)),
    ("1.5Gi", Decimal(3 * 1024**3 // 2)),
    ("2G", Decimal(2 * 10**9)),
    ("1500m", Decimal("1.5")),
    ("12345678n", Decimal("0.012345678")),
    ("100u", Decimal("0.0001")),
    ("2", Decimal(2)),
    ("1e3", Decimal(1000)),
    ("129e6", Decimal(129 * 10**6)),
    (512, Decimal(512)),
    (0.25, Decimal("0.25")),
])
def test_it_reads_every_kind_of_suffix(text, number):
    assert parse_quantity(text) == number


@pytest.mark.parametrize("text", ["", None, "abc", "12Qi", "--1", True, float("nan")])
def test_what_is_not_a_quantity_reads_as_none(text):
    assert parse_quantity(text) is None


def test_memory_is_written_in_binary_units():
    assert memory_text("16310376Ki") == "15.6\u00a0GiB"
    assert memory_text("64Mi") == "64\u00a0MiB"
    assert memory_text("2Gi") == "2\u00a0GiB"
    assert memory_text(512) == "512\u00a0B"
    assert memory_text(20 * 1024 * 1024 + 4096) == "20\u00a0MiB"
    assert memory_text("not-a-size") == "not-a-size"


def test_cpu_is_written_in_cores_or_millicores():
    assert cpu_text("4") == "4 cores"
    assert cpu_text("3920m") == "3.92 cores"
    assert cpu_text("1000m") == "1 core"
    assert cpu_text("250m") == "250 millicores"
    assert cpu_text("12345678n") == "12 millicores"
    assert cpu_text(0.00123) == "1.2 millicores"
    assert cpu_text("0") == "0"


def test_a_quota_key_picks_how_its_value_is_shown():
    assert quantity_text("2Gi", "requests.memory") == "2\u00a0GiB"
    assert quantity_text("500m", "limits.cpu") == "500 millicores"
    assert quantity_text("10Gi", "requests.storage") == "10\u00a0GiB"
    assert quantity_text("20", "pods") == "20"


def test_the_template_filter_follows_the_language():
    template = Template('{% load panel_tags %}{{ node.memory|quantity:"memory" }} · {{ node.cpu|quantity:"cpu" }}')
    with translation.override("fr"):
        assert template.render(Context({"node": {"memory": "16310376Ki", "cpu": "3920m"}})) == "15,6\u00a0Gio · 3,92 cœurs"
