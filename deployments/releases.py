"""Creating releases and starting the jobs that act on services: what views, the API and
commands call. Nothing here talks to a cluster."""

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from panel.jobs.models import Job
from panel.jobs.services import start_job

from .models import Release, Service
from .spec import normalize_spec


class ServiceBusy(Exception):
    """Another job is already changing this service (the API answers 409)."""


def active_job(service):
    return Job.objects.for_target(service).active().first()


def ensure_idle(service):
    job = active_job(service)
    if job is not None:
        raise ServiceBusy(_("Job #%(id)s (%(kind)s) is already working on %(service)s; wait for it or cancel it.") % {"id": job.pk, "kind": job.kind, "service": service})


def create_release(service, user, note="", rollback_of=None, spec=None):
    """A new immutable revision of the service's spec (or of `spec`, for a rollback)."""
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        revision = (locked.releases.aggregate(top=Max("revision"))["top"] or 0) + 1
        return Release.objects.create(
            service=locked,
            revision=revision,
            spec=normalize_spec(spec if spec is not None else locked.spec),
            note=note[:300],
            rollback_of=rollback_of,
            created_by=user if getattr(user, "pk", None) else None,
        )


def deploy(service, user, tag=None, note=""):
    """Save a new tag if given, snapshot the spec as a release and start its deploy job."""
    ensure_idle(service)
    service.refresh_from_db()  # a job (scale) may have changed the spec since the caller read it
    if tag:
        service.spec = normalize_spec({**service.spec, "tag": tag})
        service.save(update_fields=["spec", "updated_at"])
    release = create_release(service, user, note=note or (_("deploy tag %(tag)s") % {"tag": tag} if tag else ""))
    job = start_job("service-deploy", {"release": release.pk}, user, target=service)
    Release.objects.filter(pk=release.pk).update(job=job)
    return release, job


def rollback(service, user, revision):
    """Re-apply an earlier release's spec as a new revision, and deploy it (keeping today's replica count)."""
    ensure_idle(service)
    service.refresh_from_db()
    earlier = service.releases.get(revision=revision)
    # The earlier image and settings come back; the replica count is today's (scaling is separate).
    spec = {**earlier.spec, "replicas": service.spec.get("replicas", earlier.spec["replicas"])}
    release = create_release(service, user, note=_("rollback to revision %(n)s") % {"n": revision}, rollback_of=earlier, spec=spec)
    service.spec = release.spec
    service.save(update_fields=["spec", "updated_at"])
    job = start_job("service-deploy", {"release": release.pk}, user, target=service)
    Release.objects.filter(pk=release.pk).update(job=job)
    return release, job


def act(service, user, kind, params=None):
    """Start scale / restart / stop / remove / logs / stats on a service."""
    if kind not in ("service-logs", "service-stats", "service-observe"):
        ensure_idle(service)
    return start_job(kind, params or {}, user, target=service)


def mark(release, status):
    release.status = status
    release.save(update_fields=["status"])

