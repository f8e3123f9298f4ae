"""What the student is shown of an SSH or Kubernetes environment: how to get in, never the panel's key or a token."""

import pytest
import yaml
from django.urls import reverse

from clusters.models import Credential
from labs.models import Environment, EnvironmentState
from tests.fixtures.actors import logged_in

from tests.labs.providers.conftest import make_exercise

pytestmark = pytest.mark.django_db

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOmG7yKf2r1oR0QvUSpWcbHk2j5tnUOZz0j3A9yAqk6N"


def ready(environment, access):
    environment.access = access
    environment.state = EnvironmentState.READY
    environment.save()
    return environment


def test_it_shows_the_student_their_ssh_access_but_not_the_panels_key(ssh_course, sam, dave, docker_host):
    environment = Environment.objects.create(exercise=make_exercise(ssh_course, "ssh-harden-systemd"), owner=sam, cluster=docker_host)
    ready(environment, {"ssh": {"host": "127.0.0.1", "port": 24022, "user": "student", "host_key": HOST_KEY,
                                "host_key_fingerprint": "SHA256:abc", "command": "ssh -p 24022 student@127.0.0.1"}})
    panel_key = Credential(name=f"lab-test-env-{environment.pk}-panel-key", kind="ssh-key")
    from tests.support.keys import generate_keypair

    private, _public = generate_keypair()
    panel_key.set_secret({"private_key": private})
    panel_key.save()

    page = logged_in(sam).get(reverse("labs:environment_detail", args=[environment.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "ssh -p 24022 student@127.0.0.1" in text and "SHA256:abc" in text
    assert private.splitlines()[1] not in text
    assert logged_in(dave).get(reverse("labs:environment_detail", args=[environment.pk])).status_code == 404


def test_it_hands_the_kubeconfig_to_its_owner_only(kube_target, kube_course, sam, dave):
    environment = Environment.objects.create(exercise=make_exercise(kube_course, "k8s-api-hpa"), owner=sam, cluster=kube_target.cluster)
    kubeconfig = yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "users": [{"name": "x", "user": {"token": "secret-token-value"}}]})
    ready(environment, {"kubeconfig": kubeconfig, "namespace": environment.name})

    page = logged_in(sam).get(reverse("labs:environment_detail", args=[environment.pk]))
    assert page.status_code == 200
    assert "secret-token-value" not in page.content.decode()
    download = logged_in(sam).get(reverse("labs:environment_kubeconfig", args=[environment.pk]))
    assert download.status_code == 200
    body = b"".join(download.streaming_content) if download.streaming else download.content
    assert b"secret-token-value" in body
    assert logged_in(dave).get(reverse("labs:environment_kubeconfig", args=[environment.pk])).status_code == 404
