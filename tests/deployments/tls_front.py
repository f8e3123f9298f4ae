"""A TLS front for the local Docker socket that requires client certificates, as
`dockerd --tlsverify` does, so the tcp+TLS path is tested against the real engine."""

import datetime
import os
import socket
import ssl
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def make_ca(common_name="filrouge test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca_key, ca_cert, common_name, server=False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return _pem(key), cert.public_bytes(serialization.Encoding.PEM).decode()


class TlsDockerProxy:
    """127.0.0.1:PORT speaking TLS (client certificate required) in front of /var/run/docker.sock."""

    def __init__(self, socket_path="/var/run/docker.sock"):
        self.socket_path = socket_path
        self.ca_key, self.ca_cert = make_ca()
        self.ca_pem = self.ca_cert.public_bytes(serialization.Encoding.PEM).decode()
        server_key, server_cert = issue(self.ca_key, self.ca_cert, "127.0.0.1", server=True)
        self.workdir = tempfile.mkdtemp(prefix="filrouge-tls-proxy-")
        paths = {}
        for name, text in (("server.pem", server_cert), ("server-key.pem", server_key), ("ca.pem", self.ca_pem)):
            paths[name] = os.path.join(self.workdir, name)
            with open(paths[name], "w") as handle:
                handle.write(text)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(paths["server.pem"], paths["server-key.pem"])
        self.context.load_verify_locations(paths["ca.pem"])
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._serve, daemon=True).start()

    def client_secret(self):
        """A docker-tls credential secret signed by this proxy's CA."""
        key, cert = issue(self.ca_key, self.ca_cert, "filrouge panel")
        return {"ca_cert": self.ca_pem, "client_cert": cert, "client_key": key}

    def _serve(self):
        while not self.stopping:
            try:
                raw, _address = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(raw,), daemon=True).start()

    def _handle(self, raw):
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.socket_path)

        def pump(source, target):
            try:
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    try:
                        sock.close()
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)

    def stop(self):
        self.stopping = True
        self.listener.close()
        import shutil

        shutil.rmtree(self.workdir, ignore_errors=True)
