"""Credential secrets at rest: encrypted with the dedicated keys, rotated by a command."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from clusters.inventory.credentials import describe_public
from clusters.models import Credential
from panel.lib import crypto
from tests.support.keys import generate_keypair

pytestmark = pytest.mark.django_db


def make(name, kind, secret):
    credential = Credential(name=name, kind=kind)
    credential.set_secret(secret)
    credential.save()
    return credential


def test_rotation_re_encrypts_every_secret_with_the_first_key(settings, capsys):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIAL_KEYS = [old_key]
    private, _ = generate_keypair()
    key = make("key", "ssh-key", {"private_key": private})
    password = make("pw", "password", {"password": "s3cret-pass"})
    before = {c.pk: c.secret_encrypted for c in Credential.objects.all()}

    settings.CREDENTIAL_KEYS = [new_key, old_key]
    call_command("rotate_credential_keys")
    assert "Re-encrypted 2 credential(s)" in capsys.readouterr().out

    settings.CREDENTIAL_KEYS = [new_key]  # the old key is gone: every secret still reads
    for credential in Credential.objects.all():
        assert credential.secret_encrypted != before[credential.pk]
    assert Credential.objects.get(pk=key.pk).get_secret()["private_key"] == private
    assert Credential.objects.get(pk=password.pk).get_secret() == {"password": "s3cret-pass"}


def test_rotation_stops_with_a_clear_message_when_a_key_is_missing(settings):
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]
    make("pw", "password", {"password": "s3cret-pass"})
    settings.CREDENTIAL_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(CommandError, match="Credential pw cannot be decrypted with any configured key"):
        call_command("rotate_credential_keys")


def test_the_public_part_of_each_kind_holds_no_secret():
    private, public = generate_keypair("rsa")
    described = describe_public("ssh-key", {"private_key": private})
    kubeconfig = "apiVersion: v1\nclusters: [{name: c, cluster: {server: 'https://10.0.0.1:6443'}}]\ncontexts: [{name: ctx, context: {cluster: c, user: u}}]\ncurrent-context: ctx\nusers: [{name: u, user: {token: abc-secret-token}}]\n"

    assert described["key_type"] == "ssh-rsa" and described["public_key"].split()[1] == public.split()[1]
    assert describe_public("kubeconfig", {"kubeconfig": kubeconfig}) == {"contexts": ["ctx"], "current_context": "ctx", "servers": ["https://10.0.0.1:6443"]}
    assert describe_public("registry", {"server": "127.0.0.1:5000", "password": "p"}) == {"server": "127.0.0.1:5000"}
    with pytest.raises(ValueError, match="line 1, column"):
        describe_public("kubeconfig", {"kubeconfig": "{broken"})
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
