"""Filter fields shared by the list pages and their API endpoints (jobs, audit log)."""

import re
from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class DateOrDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, or a date alone as a date input sends it ("2026-12-07").

    A date alone means the start of that day in the panel's time zone or, with
    `end_of_day`, the start of the next day: "To 7 December" then includes the 7th.
    """

    def __init__(self, *args, end_of_day=False, **kwargs):
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}))
        self.end_of_day = end_of_day
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and DATE_ONLY.match(value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid") from None
            if self.end_of_day:
                day += timedelta(days=1)
            return timezone.make_aware(datetime.combine(day, time.min))
        return super().to_python(value)


class DateOrDateTimeFilter(django_filters.IsoDateTimeFilter):
    """`since`/`until`-style bounds: a date-time for scripts, a date from the page's date input."""

    field_class = DateOrDateTimeField


class ChoicesFilter(django_filters.MultipleChoiceFilter):
    """Several values of one field (?status=failed&status=lost), shown as labelled checkboxes."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.CheckboxSelectMultiple)
        super().__init__(*args, **kwargs)
