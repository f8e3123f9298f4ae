"""TLS material for the stand-in: a self-signed CA and a server certificate
for 127.0.0.1/localhost (and the in-cluster ``kubernetes.default.svc``
names), made with ``cryptography`` and cached in a temp directory so that
every test session does not pay for key generation.

Also makes the certificates tests need to prove verification really happens:
an *expired* copy of the CA (same key and subject, validity in the past) and
an unrelated CA.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")


@dataclass
class CertBundle:
    ca_pem: str
    ca_key_pem: str
    cert_file: str
    key_file: str


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ca_cert(key, not_before, not_after, cn="kubernetes-standin-ca"):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256()))


def _server_cert(ca_key, ca_cert, key):
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in SERVER_NAMES] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))


def default_cache_dir():
    return os.path.join(tempfile.gettempdir(), f"filrouge-kube-standin-tls-{os.getuid()}")


def _still_valid(path):
    try:
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)


def ensure_certs(cache_dir=None):
    """Load the cached CA and server certificate, making them if missing or stale."""
    cache_dir = cache_dir or default_cache_dir()
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)
    files = {n: os.path.join(cache_dir, n) for n in ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")}
    with open(os.path.join(cache_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(os.path.exists(p) for p in files.values()) or not _still_valid(files["server.pem"]) \
                or not _still_valid(files["ca.pem"]):
            now = dt.datetime.now(dt.timezone.utc)
            ca_key = _key()
            ca = _ca_cert(ca_key, now - dt.timedelta(hours=1), now + dt.timedelta(days=3650))
            key = _key()
            cert = _server_cert(ca_key, ca, key)
            for name, text in (("ca.pem", _pem_cert(ca)), ("ca-key.pem", _pem_key(ca_key)),
                               ("server.pem", _pem_cert(cert)), ("server-key.pem", _pem_key(key))):
                tmp = files[name] + ".tmp"
                with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                    f.write(text)
                os.replace(tmp, files[name])
        with open(files["ca.pem"]) as f:
            ca_pem = f.read()
        with open(files["ca-key.pem"]) as f:
            ca_key_pem = f.read()
    return CertBundle(ca_pem, ca_key_pem, files["server.pem"], files["server-key.pem"])


def expired_ca_pem(bundle):
    """The same CA (key and subject) but valid only in the past."""
    key = serialization.load_pem_private_key(bundle.ca_key_pem.encode(), password=None)
    now = dt.datetime.now(dt.timezone.utc)
    return _pem_cert(_ca_cert(key, now - dt.timedelta(days=30), now - dt.timedelta(days=1)))


def unrelated_ca_pem():
    now = dt.datetime.now(dt.timezone.utc)
    return _pem_cert(_ca_cert(_key(), now - dt.timedelta(hours=1), now + dt.timedelta(days=1),
                              cn="some-other-cluster-ca"))


def make_client_ca():
    """A CA of its own for client certificates (kube-apiserver's --client-ca-file). It is
    not the serving CA on purpose: OpenSSL would otherwise send that CA along with the
    server certificate (it builds chains from its trust store), which a real API server
    does not do, and clients would see another verification error."""
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    ca = _ca_cert(key, now - dt.timedelta(hours=1), now + dt.timedelta(days=3650), cn="kubernetes-standin-client-ca")
    return CertBundle(_pem_cert(ca), _pem_key(key), "", "")


def client_cert(bundle, common_name, organizations=(), days=365):
    """(certificate PEM, key PEM) for a client signed by the stand-in's CA, as kubeadm
    writes into admin.conf: the API server reads the user from the CN and the groups
    from the O attributes."""
    ca_key = serialization.load_pem_private_key(bundle.ca_key_pem.encode(), password=None)
    ca_cert = x509.load_pem_x509_certificate(bundle.ca_pem.encode())
    key = _key()
    now = dt.datetime.now(dt.timezone.utc)
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _pem_cert(cert), _pem_key(key)


def identity_from_peer_cert(peer):
    """(username, groups) from `SSLSocket.getpeercert()` of a verified client, or None."""
    if not peer:
        return None
    username, groups = None, []
    for rdn in peer.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                username = value
            elif name == "organizationName":
                groups.append(value)
    return (username, tuple(groups)) if username else None
