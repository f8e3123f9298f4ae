"""The SSH and Kubernetes starter exercises load with `load_course labs/starter`, validated like any course."""

from pathlib import Path

import pytest
from django.core.management import call_command

from labs.models import Course

pytestmark = pytest.mark.django_db

STARTER = Path(__file__).resolve().parents[3] / "labs" / "starter"


def test_it_loads_the_ssh_and_kubernetes_starter_exercises():
    call_command("load_course", str(STARTER), verbosity=0)
    course = Course.objects.get()
    exercises = {exercise.slug: exercise for exercise in course.exercises.all()}
    assert {"ssh-harden-systemd", "k8s-api-hpa", "k8s-rolling-update"} <= set(exercises)
    ssh = exercises["ssh-harden-systemd"]
    assert (ssh.target, ssh.max_score, ssh.start) == ("ssh", 12, {"image": "debian-lab", "user": "student", "sudo": True})
    assert [check["type"] for check in ssh.checks].count("ssh.root_login_refused") == 1
    hpa = exercises["k8s-api-hpa"]
    assert (hpa.target, hpa.max_score, hpa.quota) == ("kubernetes", 14, {"cpu": 2, "memory": "2Gi", "pods": 12})
    assert hpa.start["manifests"][0]["kind"] == "ConfigMap"
    rolling = exercises["k8s-rolling-update"]
    assert rolling.max_score == 10
    assert all(check["hint"] for exercise in (ssh, hpa, rolling) for check in exercise.checks)
