"""Shared set-up of the Docker benchmarks: Django on a throw-away test database, the test
images, and running a job kind in this process exactly as the worker would (runner.execute)."""

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def setup_django():
    """Django on its own throw-away database (test_filrouge_bench_docker_<checkout>), so that a
    benchmark and the test suite of the same checkout can run at the same time."""
    import hashlib

    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/filrouge_bench_docker_{checkout}")
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    return lambda: connection.creation.destroy_test_db(old_name, verbosity=0)


def docker_client():
    import docker

    from tests.support.services import ensure_dockerd

    ensure_dockerd()
    return docker.from_env(timeout=300)


def images(client):
    from tests.support.images import build_http_app_images

    return build_http_app_images(client)


def operator():
    from panel.accounts.models import Role, User

    user, _ = User.objects.get_or_create(username="bench", defaults={"role": Role.OPERATOR})
    return user


def run_job(kind, params, user, target):
    """Create the job row and run it here, through the same runner the RQ worker calls."""
    from django.contrib.contenttypes.models import ContentType

    from panel.jobs.kinds import get_kind
    from panel.jobs.models import Job
    from panel.jobs.runner import execute

    job_kind = get_kind(kind)
    cleaned = job_kind.validate(params, context={"user": user, "target": target})
    job = Job.objects.create(kind=kind, params=cleaned, user=user, timeout=job_kind.timeout,
                             target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk), target_repr=str(target))
    execute(job.pk)
    job.refresh_from_db()
    if job.status != "succeeded":
        raise RuntimeError(f"{kind} ended {job.status}: {job.error}")
    return job


def project_name(prefix):
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def remove_labelled(client, label):
    for item in client.api.containers(all=True, filters={"label": label}):
        client.api.remove_container(item["Id"], force=True, v=True)
    for network in client.api.networks(filters={"label": label}):
        client.api.remove_network(network["Id"])


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def median(values):
    return statistics.median(values)


def table(title, header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    print(title)
    print("  ".join(str(cell).ljust(width) for cell, width in zip(header, widths)))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
