"""The filter bars of the job list and the audit log: every control has a real label, dates
read "From"/"To" with date inputs, several statuses are chosen with labelled checkboxes,
and a date alone in "To" includes that whole day (on the page and in the API)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from panel.audit.context import acting_as
from panel.audit.models import Action, AuditEvent
from panel.jobs.models import Job, Status
from tests.fixtures.actors import api_client, logged_in
from tests.support.html import form_controls

pytestmark = pytest.mark.django_db

FILTER_FORM = '<form method="get" class="filters"'


def controls_of(page):
    controls, legends = form_controls(page, within=FILTER_FORM)
    return [control for control in controls if control["attrs"].get("type") != "hidden"], legends


def make_job(user, status, created_at):
    job = Job.objects.create(kind="diagnostics", user=user, status=status, timeout=60)
    Job.objects.filter(pk=job.pk).update(created_at=created_at)
    return job


def test_every_control_of_the_job_filter_bar_has_a_label_of_its_own(alice):
    page = logged_in(alice).get("/jobs/").content.decode()

    controls, legends = controls_of(page)

    assert all(control["label"] for control in controls), [c["attrs"] for c in controls if not c["label"]]
    labels = {control["attrs"]["name"]: control["label"] for control in controls if control["tag"] != "input" or control["attrs"].get("type") != "checkbox"}
    assert labels == {"kind": "Kind", "user": "User", "target": "Target", "created_after": "From", "created_before": "To"}
    dates = [control for control in controls if control["attrs"]["name"] in ("created_after", "created_before")]
    assert {control["attrs"]["type"] for control in dates} == {"date"}
    assert "Status" in legends
    assert not any("greater than" in control["label"] or "less than" in control["label"] for control in controls)


def test_the_status_filter_is_a_list_of_labelled_checkboxes_not_a_multiple_select(alice):
    page = logged_in(alice).get("/jobs/").content.decode()

    controls, _legends = controls_of(page)

    assert not any("multiple" in control["attrs"] for control in controls)
    statuses = {control["attrs"]["value"]: control["label"] for control in controls if control["attrs"].get("name") == "status"}
    assert statuses == {value: str(label) for value, label in Status.choices}
    kind = next(control for control in controls if control["attrs"]["name"] == "kind")
    assert kind["options"][0] == ("", "Any kind")


def test_the_dashboards_failure_link_ticks_the_three_statuses_and_lists_only_those_jobs(alice):
    now = timezone.now()
    failed, lost, succeeded = (make_job(alice, status, now) for status in (Status.FAILED, Status.LOST, Status.SUCCEEDED))

    response = logged_in(alice).get("/jobs/?status=failed&status=errored&status=lost")

    page = response.content.decode()
    controls, _legends = controls_of(page)
    ticked = {control["attrs"]["value"] for control in controls if control["attrs"].get("name") == "status" and "checked" in control["attrs"]}
    assert ticked == {"failed", "errored", "lost"}
    assert "Failed, Errored, Lost" in page  # the drop-down's summary says what is chosen
    shown = {job.pk for job in response.context["page"]}
    assert shown == {failed.pk, lost.pk} and succeeded.pk not in shown


def test_a_date_range_from_the_date_inputs_includes_the_whole_last_day(alice):
    today = timezone.localdate()
    midnight = timezone.make_aware(timezone.datetime.combine(today, timezone.datetime.min.time()))
    before = make_job(alice, Status.SUCCEEDED, midnight - timedelta(minutes=1))
    at_start = make_job(alice, Status.SUCCEEDED, midnight)
    late = make_job(alice, Status.SUCCEEDED, midnight + timedelta(hours=23, minutes=59))
    tomorrow = make_job(alice, Status.SUCCEEDED, midnight + timedelta(days=1))

    response = logged_in(alice).get("/jobs/", {"created_after": today.isoformat(), "created_before": today.isoformat()})

    assert {job.pk for job in response.context["page"]} == {at_start.pk, late.pk}
    api = api_client(alice, "read").get("/api/jobs/", {"created_after": today.isoformat(), "created_before": today.isoformat()})
    assert {job["id"] for job in api.json()["results"]} == {at_start.pk, late.pk}
    assert before.pk and tomorrow.pk


def test_a_date_time_bound_still_means_that_instant_for_scripts(alice):
    now = timezone.now()
    earlier = make_job(alice, Status.SUCCEEDED, now - timedelta(hours=2))
    make_job(alice, Status.SUCCEEDED, now)

    response = api_client(alice, "read").get("/api/jobs/", {"created_before": (now - timedelta(hours=1)).isoformat()})

    assert [job["id"] for job in response.json()["results"]] == [earlier.pk]


def test_an_impossible_date_is_refused_with_the_fields_name(alice):
    response = api_client(alice, "read").get("/api/jobs/", {"created_before": "2026-02-30"})

    assert response.status_code == 400 and "created_before" in response.json()


def test_every_control_of_the_audit_filter_bar_has_a_label_and_actions_are_checkboxes(alice):
    page = logged_in(alice).get("/audit/").content.decode()

    controls, legends = controls_of(page)

    assert all(control["label"] for control in controls)
    labels = {control["attrs"]["name"]: control["label"] for control in controls if control["attrs"].get("type") != "checkbox"}
    assert labels == {"user": "User", "object_type": "Object type", "object_id": "Object id", "request_id": "Request id",
                      "since": "From", "until": "To", "q": "Search"}
    assert {control["attrs"]["type"] for control in controls if control["attrs"]["name"] in ("since", "until")} == {"date"}
    actions = {control["attrs"]["value"]: control["label"] for control in controls if control["attrs"].get("name") == "action"}
    assert actions == {value: str(label) for value, label in Action.choices}
    assert "Action" in legends and not any("multiple" in control["attrs"] for control in controls)


def test_the_audit_logs_to_date_includes_that_day(alice):
    with acting_as(source="cli"):
        from panel.audit.recorder import record

        record(Action.OTHER, None, message="today's event")
    today = timezone.localdate()

    page = logged_in(alice).get("/audit/", {"since": today.isoformat(), "until": today.isoformat()}).content.decode()
    yesterday = (today - timedelta(days=1)).isoformat()
    empty = logged_in(alice).get("/audit/", {"since": yesterday, "until": yesterday}).content.decode()

    assert "today&#x27;s event" in page and "today&#x27;s event" not in empty
    assert AuditEvent.objects.filter(message="today's event").exists()
