"""SSH key pairs and fingerprints, made in-process.

Why: tests need fresh keys (client keys, per-host host keys) in large numbers, and
running `ssh-keygen` 30 times is slower and adds a dependency; the `cryptography`
package (already required by paramiko) makes an Ed25519 key in well under a millisecond.
Fingerprints use OpenSSH's format ("SHA256:<unpadded base64>") so they can be compared
with `ssh-keygen -lf` output and with what the panel stores.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def _private_key(kind: str):
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key kind {kind!r} (ed25519, rsa or ecdsa)")


def generate_keypair(
    kind: str = "ed25519", passphrase: str | None = None, comment: str = "filrouge-test"
) -> tuple[str, str]:
    """Return (private_pem, public_openssh_line) for a new key.

    The private key is in OpenSSH's armoured format ("-----BEGIN OPENSSH PRIVATE
    KEY-----"), which both OpenSSH and paramiko read for every kind (paramiko cannot
    read Ed25519 keys in PKCS#8). With a passphrase it is encrypted (bcrypt KDF).
    """
    key = _private_key(kind)
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption
    ).decode()
    public_line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return private_pem, f"{public_line} {comment}"


def fingerprint_sha256(public_key_line: str) -> str:
    """OpenSSH SHA256 fingerprint of "type base64 [comment]"."""
    blob = base64.b64decode(public_key_line.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def paramiko_key(private_pem: str, passphrase: str | None = None):
    """Load a private key made by generate_keypair into a paramiko PKey."""
    import io

    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(private_pem), password=passphrase)
        except paramiko.SSHException:
            continue
    raise ValueError("not a private key paramiko can read")
