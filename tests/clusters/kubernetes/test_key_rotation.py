"""Stored manifests and kubeconfigs are encrypted with the credential keys and rotate with them."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from clusters.models import Cluster, IsolatedNamespaceRecord, ManifestSet

pytestmark = pytest.mark.django_db


def test_rotation_re_encrypts_manifest_sets_and_kubeconfigs(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old_key]
    cluster = Cluster.objects.create(name="kube", kind="kubernetes")
    stored = ManifestSet(cluster=cluster, namespace="a")
    stored.set_sources([("a.yaml", "kind: Secret # s3cret")])
    stored.save()
    record = IsolatedNamespaceRecord(cluster=cluster, name="lab")
    record.set_kubeconfig({"users": [{"user": {"token": "tok"}}]})
    record.save()
    assert "s3cret" not in stored.text_encrypted and "tok" not in record.kubeconfig_encrypted

    settings.CREDENTIAL_KEYS = [new_key, old_key]
    call_command("rotate_credential_keys")
    settings.CREDENTIAL_KEYS = [new_key]
    assert ManifestSet.objects.get(pk=stored.pk).get_sources() == [("a.yaml", "kind: Secret # s3cret")]
    assert IsolatedNamespaceRecord.objects.get(pk=record.pk).get_kubeconfig() == {"users": [{"user": {"token": "tok"}}]}
