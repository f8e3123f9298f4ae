"""Job pages: list with filters, the start form, the live log and its cursor."""

import pytest
from django.utils import timezone

from panel.jobs.models import Job, JobEvent, Status
from tests.fixtures.actors import logged_in

pytestmark = pytest.mark.django_db


def make_job(user, status=Status.RUNNING, kind="diagnostics", lines=0, ended=False, target_repr=""):
    job = Job.objects.create(kind=kind, user=user, status=status, timeout=60, target_repr=target_repr, line_count=lines + int(ended))
    now = timezone.now()
    events = [JobEvent(job=job, seq=n, time=now, text=f"line {n}", host="web01") for n in range(1, lines + 1)]
    if ended:
        events.append(JobEvent(job=job, seq=lines + 1, time=now, text="Finished: succeeded.", is_end=True))
    JobEvent.objects.bulk_create(events)
    return job


def test_the_job_page_shows_the_last_200_lines_and_polls_after_the_last_one(bob):
    job = make_job(bob, lines=500)

    page = logged_in(bob).get(f"/jobs/{job.pk}/").content.decode()

    assert "line 500" in page and "line 301" in page and "line 300<" not in page
    assert "300 earlier lines are not shown." in page
    assert f'hx-get="/jobs/{job.pk}/log/?after=500"' in page


def test_the_poll_returns_only_lines_after_the_cursor(bob):
    job = make_job(bob, lines=10)

    body = logged_in(bob).get(f"/jobs/{job.pk}/log/", {"after": 7}).content.decode()

    assert 'data-seq="8"' in body and 'data-seq="10"' in body and 'data-seq="7"' not in body
    assert f'hx-get="/jobs/{job.pk}/log/?after=10"' in body
    assert 'id="job-header" hx-swap-oob="true"' in body


def test_polling_stops_once_the_end_marker_has_been_sent(bob):
    job = make_job(bob, status=Status.SUCCEEDED, lines=3, ended=True)
    client = logged_in(bob)

    last_poll = client.get(f"/jobs/{job.pk}/log/", {"after": 2}).content.decode()
    assert 'data-seq="4"' in last_poll and "hx-trigger" not in last_poll.split('id="job-header"')[0]
    assert "hx-trigger" not in client.get(f"/jobs/{job.pk}/").content.decode().split('id="log-poller"')[1].split(">")[0]


def test_the_whole_log_downloads_as_text(bob):
    job = make_job(bob, status=Status.SUCCEEDED, lines=3, ended=True)

    response = logged_in(bob).get(f"/jobs/{job.pk}/log.txt")

    text = b"".join(response.streaming_content).decode()
    assert text.count("\n") == 4 and "[web01] line 2" in text


def test_a_student_cannot_see_another_users_job_anywhere(sam, dave):
    job = make_job(dave, lines=2)
    client = logged_in(sam)

    for url in [f"/jobs/{job.pk}/", f"/jobs/{job.pk}/log/", f"/jobs/{job.pk}/log.txt", f"/api/jobs/{job.pk}/", f"/api/jobs/{job.pk}/events/"]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    assert job.pk not in [row["id"] for row in client.get("/api/jobs/").json()["results"]]
    assert f"/jobs/{job.pk}/" not in client.get("/jobs/").content.decode()


def test_operators_see_every_job_and_students_their_own(bob, sam, dave):
    mine = make_job(sam)
    theirs = make_job(dave)

    assert {row["id"] for row in logged_in(bob).get("/api/jobs/").json()["results"]} == {mine.pk, theirs.pk}
    assert {row["id"] for row in logged_in(sam).get("/api/jobs/").json()["results"]} == {mine.pk}


def test_the_job_list_filters_by_status_kind_user_and_target(bob, alice):
    make_job(bob, status=Status.FAILED, target_repr="web01")
    make_job(alice, status=Status.SUCCEEDED, kind="test-lines", target_repr="db01")
    client = logged_in(bob)

    def kinds(**query):
        return [row["kind"] for row in client.get("/api/jobs/", query).json()["results"]]

    assert kinds(status="failed") == ["diagnostics"]
    assert kinds(kind="test-lines") == ["test-lines"]
    assert kinds(user="alice") == ["test-lines"]
    assert kinds(target="web") == ["diagnostics"]
    page = client.get("/jobs/", {"status": "failed"}).content.decode()
    assert "web01" in page and "db01" not in page
    partial = client.get("/jobs/", {"status": "failed"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-table").content.decode()
    assert partial.startswith('\n<div id="job-table"') and "<html" not in partial


def test_the_start_form_shows_field_errors_and_starts_nothing(bob):
    response = logged_in(bob).post("/jobs/start/diagnostics/", {"checks": ["database"], "rounds": 0, "interval": 1})

    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not Job.objects.exists()


def test_the_start_form_starts_a_job_and_shows_it(bob):
    response = logged_in(bob).post("/jobs/start/diagnostics/", {"checks": ["database", "disk"], "rounds": 2, "interval": 0})

    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.params == {"checks": ["database", "disk"], "rounds": 2, "interval": 0.0} and job.user == bob


def test_only_operators_start_diagnostics_and_an_unknown_kind_is_404(sam, charlie, bob):
    assert logged_in(sam).get("/jobs/start/diagnostics/").status_code == 403
    assert logged_in(charlie).post("/jobs/start/diagnostics/", {"rounds": 1}).status_code == 403
    assert logged_in(bob).get("/jobs/start/no-such-kind/").status_code == 404
