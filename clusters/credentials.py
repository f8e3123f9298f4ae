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


PUBLIC_DESCRIBERS = {
    "ssh-key": describe_ssh_key,
    "password": describe_password,
    "registry": describe_password,
}


def describe_public(kind, secret):
    describer = PUBLIC_DESCRIBERS.get(kind)
    return describer(secret) if describer else {}
