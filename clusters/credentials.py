"""What may be shown of a credential: computed from the secret when it is set.

One function per kind, chosen through PUBLIC_DESCRIBERS. Each returns a small dict of
public facts (key type and fingerprint, certificate subject and expiry, kubeconfig
contexts) and raises ValueError with a person-readable message for a secret that
cannot be used (not a key, wrong passphrase, not a kubeconfig).
"""

import base64
import hashlib
import io

from django.utils.translation import gettext as _


def describe_ssh_key(secret):
    import paramiko

    text = secret.get("private_key", "")
    passphrase = secret.get("passphrase") or None
    last_error = None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            key = key_class.from_private_key(io.StringIO(text), password=passphrase)
            break
        except paramiko.PasswordRequiredException:
            raise ValueError(_("This private key is encrypted: give its passphrase.")) from None
        except (paramiko.SSHException, ValueError) as exc:
            last_error = exc
    else:
        raise ValueError(_("Not a usable OpenSSH/PEM private key (%(error)s).") % {"error": last_error})
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return {
        "key_type": key.get_name(),
        "fingerprint": f"SHA256:{digest}",
        "public_key": f"{key.get_name()} {key.get_base64()}",
        "bits": key.get_bits(),
    }


def describe_password(secret):
    if not secret.get("password"):
        raise ValueError(_("The password is empty."))
    return {}


def describe_docker_tls(secret):
    """CA, client certificate and key (PEM) for a Docker engine on tcp:// with TLS."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    certificates = {}
    for name, label in (("ca_cert", _("CA certificate")), ("client_cert", _("client certificate"))):
        try:
            certificates[name] = x509.load_pem_x509_certificate(secret.get(name, "").encode())
        except ValueError:
            raise ValueError(_("The %(what)s is not a PEM certificate.") % {"what": label}) from None
    try:
        key = serialization.load_pem_private_key(secret.get("client_key", "").encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError(_("The client key is not an unencrypted PEM private key.")) from None
    client = certificates["client_cert"]
    public_numbers = client.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != public_numbers:
        raise ValueError(_("The client key does not belong to the client certificate."))
    return {
        "subject": client.subject.rfc4514_string(),
        "issuer": client.issuer.rfc4514_string(),
        "ca_subject": certificates["ca_cert"].subject.rfc4514_string(),
        "not_after": client.not_valid_after_utc.isoformat(),
        "fingerprint": "SHA256:" + client.fingerprint(hashes.SHA256()).hex(),
    }


def describe_registry(secret):
    """A registry login: the user name is the credential's `username`, the secret its password or token."""
    if not secret.get("password"):
        raise ValueError(_("The registry password (or token) is empty."))
    return {}


PUBLIC_DESCRIBERS = {
    "ssh-key": describe_ssh_key,
    "password": describe_password,
    "registry": describe_registry,
    "docker-tls": describe_docker_tls,
}


def describe_public(kind, secret):
    describer = PUBLIC_DESCRIBERS.get(kind)
    return describer(secret) if describer else {}
