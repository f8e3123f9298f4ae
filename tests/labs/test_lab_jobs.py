"""Lab job kinds without a provider: a launch that cannot start fails cleanly, destroy is idempotent,
extend is capped, the expiry sweep picks exactly what is due, and the check runner scores."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labs.checks.base import CheckTarget
from labs.checks.runner import run_checks
from labs.jobs import environments_to_tear_down, may_act_on, sweep_expired_environments
from labs.models import Environment, EnvironmentState
from panel.jobs.models import Job, Status

from .jobhelpers import job_text, run_now

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_launch_with_no_cluster_fails_telling_the_student_in_their_words_and_the_teacher_how_to_fix_it(exercise, enrolled, sam, carol, caplog):
    environment = Environment.objects.create(exercise=exercise, owner=sam)

    job = run_now("lab-launch", environment, sam)

    assert job.status == Status.FAILED
    assert job.error == environment.error == "This exercise cannot start yet: the lab is not set up for it. Your teacher sees what is missing on the course page."
    assert "has no cluster for docker exercises" in environment.error_detail and "--cluster" in environment.error_detail
    assert "--cluster" not in job_text(job) and "cluster" not in job.error
    assert "--cluster" in caplog.text  # operators read it in the panel's log
    assert environment.state == EnvironmentState.FAILED
    assert environment.access == {} and environment.expires_at is None
    assert "Finished: failed." in job_text(job)


def test_a_teacher_who_launches_reads_the_detail_in_the_job(exercise, enrolled, carol):
    environment = Environment.objects.create(exercise=exercise, owner=carol)

    job = run_now("lab-launch", environment, carol)

    assert "has no cluster for docker exercises" in job.error and "--cluster" in job.error
    assert environment.error.startswith("This exercise cannot start yet")


def test_it_destroys_a_never_built_environment_and_a_second_destroy_changes_nothing(exercise, enrolled, sam):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.FAILED)

    first = run_now("lab-destroy", environment, sam)
    destroyed_at = environment.destroyed_at
    second = run_now("lab-destroy", environment, sam)

    assert first.status == second.status == Status.SUCCEEDED
    assert environment.state == EnvironmentState.DESTROYED and environment.destroyed_at == destroyed_at
    assert second.result == {"environment": environment.pk, "already": True}


def test_it_refuses_to_check_an_environment_that_is_not_ready(exercise, enrolled, sam):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.FAILED)

    job = run_now("lab-check", environment, sam)

    assert job.status == Status.FAILED and "not ready" in job.error
    assert not environment.attempts.exists()


def test_it_extends_from_now_and_never_past_seven_days(exercise, enrolled, sam, carol):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, expires_at=timezone.now() - timedelta(minutes=5))

    run_now("lab-extend", environment, carol, minutes=30)
    assert timedelta(minutes=29) < environment.expires_at - timezone.now() <= timedelta(minutes=30)

    job = run_now("lab-extend", environment, carol, minutes=7 * 24 * 60)
    assert job.status == Status.SUCCEEDED
    assert environment.expires_at - timezone.now() <= timedelta(days=7)


def test_only_teachers_extend_and_only_owner_or_teachers_act(exercise, enrolled, sam, dave, carol, charlie):
    environment = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY)

    assert may_act_on(sam, environment) and may_act_on(carol, environment)
    assert not may_act_on(dave, environment) and not may_act_on(charlie, environment)
    assert may_act_on(carol, environment, teachers_only=True) and not may_act_on(sam, environment, teachers_only=True)


def test_the_sweep_picks_expired_live_environments_and_stale_failed_teardowns_only(exercise, course, sam, dave, carol):
    now = timezone.now()
    other = exercise.__class__.objects.create(course=course, slug="other", title="Other", target="docker")
    third = exercise.__class__.objects.create(course=course, slug="third", title="Third", target="docker")
    expired = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, expires_at=now - timedelta(seconds=1))
    running = Environment.objects.create(exercise=exercise, owner=dave, state=EnvironmentState.READY, expires_at=now + timedelta(hours=1))
    gone = Environment.objects.create(exercise=other, owner=sam, state=EnvironmentState.DESTROYED, expires_at=now - timedelta(hours=1))
    stuck = Environment.objects.create(exercise=other, owner=dave, state=EnvironmentState.DESTROYING, expires_at=now - timedelta(hours=1))
    just_failed = Environment.objects.create(exercise=third, owner=sam, state=EnvironmentState.DESTROYING, expires_at=now - timedelta(hours=1))
    Job.objects.create(kind="lab-destroy", timeout=60, status=Status.FAILED, target_id=str(stuck.pk), finished_at=now - timedelta(minutes=5))
    Job.objects.create(kind="lab-destroy", timeout=60, status=Status.FAILED, target_id=str(just_failed.pk), finished_at=now - timedelta(seconds=5))

    due = environments_to_tear_down(now)

    assert set(due) == {expired.pk, stuck.pk}
    assert running.pk not in due and gone.pk not in due and just_failed.pk not in due


def test_the_sweep_queues_one_destroy_job_per_expired_environment_and_not_twice(exercise, enrolled, sam, clean_redis):
    expired = Environment.objects.create(exercise=exercise, owner=sam, state=EnvironmentState.READY, expires_at=timezone.now() - timedelta(seconds=1))

    first = sweep_expired_environments()
    second = sweep_expired_environments()

    assert len(first) == 1 and second == []
    job = Job.objects.get(pk=first[0])
    assert (job.kind, job.target_id, job.params, job.user) == ("lab-destroy", str(expired.pk), {"reason": "expired"}, None)


def test_the_runner_scores_each_check_and_a_raising_check_fails_with_its_message(exercise, sam):
    checks = [
        {"name": "answers", "type": "test.answer", "points": 2, "hint": "say notes", "params": {"contains": "notes"}},
        {"name": "boom", "type": "test.explodes", "points": 3, "hint": "", "params": {"message": "the engine said no"}},
        {"name": "missing", "type": "test.answer", "points": 1, "hint": "h", "params": {"contains": "absent"}},
    ]
    target = CheckTarget(environment=None, labels={"answer": "my notes app"})
    seen = []

    results, score = run_checks(checks, target, on_result=seen.append)

    assert score == 2 and seen == results
    assert [(r["name"], r["passed"], r["earned"]) for r in results] == [("answers", True, 2), ("boom", False, 0), ("missing", False, 0)]
    assert results[1]["detail"] == "RuntimeError: the engine said no"
    assert results[2]["hint"] == "h" and results[2]["points"] == 1


def test_a_check_that_cannot_reach_the_environment_records_every_check_failed_with_why(exercise, enrolled, sam):
    from clusters.models import Cluster

    cluster = Cluster.objects.create(name="gone", kind="docker", endpoint="unix:///run/filrouge-test-no-such-engine.sock")
    environment = Environment.objects.create(exercise=exercise, owner=sam, cluster=cluster, state=EnvironmentState.READY)

    job = run_now("lab-check", environment, sam)

    attempt = environment.attempts.get()
    # The student is told what happened in their words; the engine's address stays out of it.
    assert job.status == Status.FAILED and job.error.startswith("Could not observe your environment to check it. Try again")
    assert "filrouge-test-no-such-engine" not in job.error
    assert attempt.score == 0 and attempt.finished_at and len(attempt.results) == 2
    assert all(not r["passed"] and r["detail"] == job.error for r in attempt.results)
    assert environment.score == 0 and environment.last_checked_at


def test_a_teacher_whose_check_cannot_reach_the_environment_reads_why(exercise, enrolled, sam, carol):
    from clusters.models import Cluster

    cluster = Cluster.objects.create(name="gone", kind="docker", endpoint="unix:///run/filrouge-test-no-such-engine.sock")
    environment = Environment.objects.create(exercise=exercise, owner=sam, cluster=cluster, state=EnvironmentState.READY)

    job = run_now("lab-check", environment, carol)

    assert job.error.startswith("Could not observe the environment: ") and "filrouge-test-no-such-engine" in job.error
