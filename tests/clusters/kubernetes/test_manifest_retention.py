"""Stored manifest text (it may hold Secrets) is purged after a week unless a job still needs it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.kubernetes.manifest_jobs import purge_old_manifest_sets
from clusters.models import Cluster
from panel.jobs.models import Job

from tests.clusters.kubernetes.conftest import manifest_set

pytestmark = pytest.mark.django_db


def test_old_manifest_sets_are_purged_unless_an_active_job_needs_them(bob):
    cluster = Cluster.objects.create(name="kube", kind="kubernetes")
    old, needed, fresh = (manifest_set(cluster, "a", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n") for _ in range(3))
    type(old).objects.filter(pk__in=[old.pk, needed.pk]).update(created_at=timezone.now() - timedelta(days=8))
    Job.objects.create(kind="kube-manifests-apply", params={"manifest_set": needed.pk}, timeout=60, status="running")
    assert purge_old_manifest_sets() == {"deleted": 1}
    assert sorted(type(old).objects.values_list("pk", flat=True)) == sorted([needed.pk, fresh.pk])
