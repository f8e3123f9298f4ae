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
from django.utils.translation import gettext_lazy as _lazy


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
    return {"server": secret.get("server", "")}


def describe_kubeconfig(secret):
    import yaml

    from panel.lib import safe_yaml

    try:
        config = safe_yaml.load(secret.get("kubeconfig", ""))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        if isinstance(exc, safe_yaml.YAMLLimitExceeded):
            where += f": {exc.problem}"
        raise ValueError(_("Not a kubeconfig: invalid YAML%(where)s.") % {"where": where}) from None
    if not isinstance(config, dict) or not config.get("clusters") or not config.get("contexts"):
        raise ValueError(_("Not a kubeconfig: it needs clusters and contexts."))
    servers = [item.get("cluster", {}).get("server", "") for item in config.get("clusters") or [] if isinstance(item, dict)]
    return {
        "contexts": [item.get("name", "") for item in config.get("contexts") or [] if isinstance(item, dict)],
        "current_context": config.get("current-context", ""),
        "servers": servers,
    }


def _certificate_facts(pem, what):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValueError(_("The %(what)s is not a PEM certificate.") % {"what": what}) from None
    return {"subject": certificate.subject.rfc4514_string(), "not_after": certificate.not_valid_after_utc.isoformat(),
            "fingerprint": "SHA256:" + certificate.fingerprint(hashes.SHA256()).hex()}


# The parts of a kubeconfig user that let someone in; everything else in a kubeconfig
# (names, namespaces, server URLs, CA data) is structure that job lines may show.
KUBECONFIG_SECRET_FIELDS = ("token", "client-key-data", "password")
KUBECONFIG_AUTH_PROVIDER_SECRETS = ("id-token", "refresh-token", "access-token", "client-secret")


def kubeconfig_secret_values(text):
    """The secret values inside a kubeconfig: each user's token, password and client key
    (as written, base64, and decoded PEM), auth-provider tokens and exec env values.
    Unreadable YAML gives no values: it cannot be used to connect either."""
    import yaml

    from panel.lib import safe_yaml

    try:
        config = safe_yaml.safe_load(text) if isinstance(text, str) else text
    except yaml.YAMLError:
        return []
    values = []
    for entry in (config or {}).get("users") or [] if isinstance(config, dict) else []:
        user = (entry or {}).get("user") if isinstance(entry, dict) else None
        if not isinstance(user, dict):
            continue
        for key in KUBECONFIG_SECRET_FIELDS:
            value = user.get(key)
            if isinstance(value, str) and value:
                values.append(value)
                if key == "client-key-data":
                    try:
                        values.append(base64.b64decode(value).decode())
                    except (ValueError, UnicodeDecodeError):
                        pass
        provider = (user.get("auth-provider") or {}).get("config") if isinstance(user.get("auth-provider"), dict) else None
        for key in KUBECONFIG_AUTH_PROVIDER_SECRETS:
            value = (provider or {}).get(key) if isinstance(provider, dict) else None
            if isinstance(value, str) and value:
                values.append(value)
        exec_section = user.get("exec") if isinstance(user.get("exec"), dict) else {}
        for variable in exec_section.get("env") or []:
            value = variable.get("value") if isinstance(variable, dict) else None
            if isinstance(value, str) and value:
                values.append(value)
    return values


def describe_kube_token(secret):
    if not secret.get("token"):
        raise ValueError(_("The token is empty."))
    public = {}
    if secret.get("ca_cert"):
        public["ca"] = _certificate_facts(secret["ca_cert"], _("CA certificate"))
    return public


PUBLIC_DESCRIBERS = {
    "ssh-key": describe_ssh_key,
    "password": describe_password,
    "registry": describe_registry,
    "docker-tls": describe_docker_tls,
    "kubeconfig": describe_kubeconfig,
    "kube-token": describe_kube_token,
}


def describe_public(kind, secret):
    describer = PUBLIC_DESCRIBERS.get(kind)
    return describer(secret) if describer else {}


# The secret fields each kind takes: (name, label, multi-line, required).
SECRET_FIELDS = {
    "ssh-key": [("private_key", _lazy("Private key (OpenSSH or PEM)"), True, True), ("passphrase", _lazy("Passphrase"), False, False),
                ("become_password", _lazy("sudo password (become)"), False, False)],
    "password": [("password", _lazy("Password"), False, True), ("become_password", _lazy("sudo password (become), if different"), False, False)],
    "kubeconfig": [("kubeconfig", _lazy("Kubeconfig (YAML)"), True, True)],
    "kube-token": [("token", _lazy("Bearer token"), False, True), ("ca_cert", _lazy("CA certificate (PEM)"), True, False)],
    "docker-tls": [("client_cert", _lazy("Client certificate (PEM)"), True, True), ("client_key", _lazy("Client key (PEM)"), True, True),
                   ("ca_cert", _lazy("CA certificate (PEM)"), True, False)],
    "registry": [("server", _lazy("Registry (host[:port])"), False, False), ("password", _lazy("Password or token"), False, True)],
}
