"""Helpers for the manifests and isolated-namespace tests: stored manifest sets, jobs run here."""

from pathlib import Path

import yaml

from clusters.models import ManifestSet

API_POC = Path(__file__).resolve().parents[2] / "fixtures" / "kubernetes" / "api-poc"


def api_poc_sources(target=None):
    """The api-poc example as [(file name, text)]; on a real cluster its image is one that runs."""
    sources = []
    for path in sorted(API_POC.glob("*.yaml")):
        text = path.read_text()
        if target is not None and not target.is_standin:
            documents = list(yaml.safe_load_all(text))
            for document in documents:
                if document and document.get("kind") == "Deployment":
                    container = document["spec"]["template"]["spec"]["containers"][0]
                    container["image"] = target.image("1")
                    container.pop("readinessProbe", None)
                    container.pop("livenessProbe", None)
            text = yaml.safe_dump_all(documents, sort_keys=False)
        sources.append((path.name, text))
    return sources


def manifest_set(cluster, namespace, sources, user=None):
    stored = ManifestSet(cluster=cluster, namespace=namespace, created_by=user)
    stored.set_sources(sources if isinstance(sources, list) else [("pasted.yaml", sources)])
    stored.save()
    return stored


def run_kind(user, kind_name, target, **params):
    """Run a job kind on `target` in this process (as the command does); the finished Job."""
    from django.contrib.contenttypes.models import ContentType

    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    kind = get_kind(kind_name)
    assert kind.allowed(user, target)
    cleaned = kind.validate(params, context={"user": user, "target": target})
    job = Job.objects.create(kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout, user=user,
                             target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk), target_repr=str(target)[:200])
    execute(job.pk)
    job = Job.objects.get(pk=job.pk)
    return job


def job_lines(job):
    return "\n".join(f"[{e.host}] {e.task}: {e.outcome} {e.text}" for e in job.events.order_by("seq"))
