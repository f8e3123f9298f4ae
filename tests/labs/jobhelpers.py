"""Run a lab job kind in this process, as a worker would, and read what it wrote."""

from django.contrib.contenttypes.models import ContentType

from panel.jobs.kinds import get_kind
from panel.jobs.models import Job, JobEvent
from panel.jobs.runner import execute


def run_now(kind_name, environment, user=None, **params):
    kind = get_kind(kind_name)
    assert kind.allowed(user, environment), f"{user} may not run {kind_name}"
    cleaned = kind.validate(params, context={"user": user, "target": environment})
    job = Job.objects.create(
        kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout, user=user,
        target_type=ContentType.objects.get_for_model(environment), target_id=str(environment.pk), target_repr=str(environment),
    )
    execute(job.pk)
    job.refresh_from_db()
    environment.refresh_from_db()
    return job


def job_text(job):
    return "\n".join(f"{e.task}: {e.outcome} {e.text}" for e in JobEvent.objects.filter(job=job).order_by("seq"))
