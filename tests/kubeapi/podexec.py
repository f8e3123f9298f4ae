"""Pod exec over the websocket protocol that the official client and browsers use.

`GET /api/v1/namespaces/{ns}/pods/{name}/exec?command=...&container=...&stdin=true&
stdout=true&stderr=true&tty=true` with `Upgrade: websocket` and the subprotocol
`v4.channel.k8s.io` (binary frames, first byte = channel) or `base64.channel.k8s.io`
(text frames, first char = channel digit, base64 payload). Channels: 0 stdin, 1 stdout,
2 stderr, 3 error (a metav1.Status JSON when the command ends: Success, or Failure with
reason NonZeroExitCode and the exit code in details.causes[ExitCode]), 4 resize
(`{"Width": cols, "Height": rows}`). Authorization is `create` on `pods/exec`, as on
current API servers.

The kubelet of the stand-in has no containers, so the command runs as a local process
on a PTY (or pipes without tty) in a scratch directory per pod, with a small
environment (HOSTNAME = pod name, HOME = that directory): a real shell that a test can
type into, resize and exit, faithful to what the protocol carries. It is not isolation:
only tests' own commands run there. The websocket framing is the `websockets` library's
sans-I/O ServerProtocol, not written by hand.

A pod whose ServiceAccount token is automounted (the default, unless the pod or its
ServiceAccount says `automountServiceAccountToken: false`) gets what a process in a real
pod gets: KUBERNETES_SERVICE_HOST/PORT pointing at the stand-in, and a real token of that
ServiceAccount bound to the pod (RBAC applies to it; deleting the pod or the account
revokes it), with `ca.crt` and `namespace` beside it. The stand-in cannot write
/var/run/secrets, so the three files go into `<scratch>/var/run/secrets/kubernetes.io/
serviceaccount` (its path in $STANDIN_SERVICEACCOUNT_DIR), and $KUBECONFIG names a
kubeconfig built from them, which kubectl and the official client read as they would
read the in-cluster configuration.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import tempfile
import termios
import threading
import time

from websockets.exceptions import InvalidState
from websockets.frames import Opcode
from websockets.http11 import Request as WsRequest
from websockets.server import ServerProtocol

from .errors import bad_request, not_found
from .meta import dig

V4 = "v4.channel.k8s.io"
BASE64 = "base64.channel.k8s.io"
SUBPROTOCOLS = [V4, BASE64]
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
SCRATCH = os.path.join(tempfile.gettempdir(), f"kube-standin-exec-{os.getpid()}")
SERVICEACCOUNT_PATH = ("var", "run", "secrets", "kubernetes.io", "serviceaccount")
TOKEN_SECONDS = 3607  # what the kubelet asks for a projected token
_tokens = {}  # (namespace, pod uid) -> (token, expiry): one mounted token per pod, renewed like the kubelet does
_tokens_lock = threading.Lock()


class ExecRequest:
    """A validated exec request, waiting for the HTTP layer to upgrade the connection."""

    def __init__(self, namespace, pod, container, command, tty, stdin, pod_uid="", service_account=None):
        self.namespace, self.pod, self.container = namespace, pod, container
        self.command, self.tty, self.stdin = command, tty, stdin
        self.pod_uid = pod_uid
        self.service_account = service_account  # (name, uid) when its token is mounted, else None


def _mounted_service_account(store, pod, ns):
    """(name, uid) of the pod's ServiceAccount when its token is automounted, else None."""
    name = dig(pod, "spec", "serviceAccountName", default="default") or "default"
    account = store.get("/serviceaccounts", ns, name)
    if account is None:
        return None
    automount = dig(pod, "spec", "automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken")
    if automount is False:
        return None
    return name, account["metadata"]["uid"]


def prepare(store, req, ns, name):
    pod = store.get("/pods", ns, name)
    if pod is None:
        raise not_found("pods", "", name)
    names = [c["name"] for c in dig(pod, "spec", "containers", default=[])]
    container = req.q("container")
    if not container:
        if len(names) != 1:
            raise bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")
        container = names[0]
    elif container not in names:
        raise bad_request(f"container {container} is not valid for pod {name}")
    if dig(pod, "status", "phase") != "Running":
        raise bad_request(f"unable to upgrade connection: container not found (\"{container}\")")
    command = req.query.get("command") or []
    if not command:
        raise bad_request("you must specify at least 1 command")
    if (req.headers.get("Upgrade") or "").lower() != "websocket":
        raise bad_request("Upgrade request required")
    return ExecRequest(ns, name, container, command, req.q_bool("tty"), req.q_bool("stdin"),
                       pod_uid=dig(pod, "metadata", "uid", default=""), service_account=_mounted_service_account(store, pod, ns))


def _pod_token(standin, exec_request):
    """The pod's projected token: issued once, bound to the pod, renewed when 80 % of its life is gone."""
    name, uid = exec_request.service_account
    key = (exec_request.namespace, exec_request.pod_uid)
    with _tokens_lock:
        token, expires = _tokens.get(key, (None, 0))
        if token is None or time.time() > expires - TOKEN_SECONDS * 0.2:
            from .auth import ISSUER

            token, expires = standin.authn.issue_sa_token(exec_request.namespace, name, uid, TOKEN_SECONDS, [ISSUER],
                                                          bound=("/pods", exec_request.namespace, exec_request.pod, exec_request.pod_uid))
            _tokens[key] = (token, expires)
    return token


def service_account_environment(standin, exec_request, workdir):
    """What a process of a pod with a mounted ServiceAccount token finds: the API's address in
    its environment, and token, ca.crt and namespace in files (here under the pod's scratch dir)."""
    if exec_request.service_account is None or standin is None:
        return {}
    folder = os.path.join(workdir, *SERVICEACCOUNT_PATH)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    token = _pod_token(standin, exec_request)
    files = {"token": token, "namespace": exec_request.namespace, "ca.crt": standin.ca_pem or ""}
    for filename, content in files.items():
        path = os.path.join(folder, filename)
        with open(os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(content)
        os.replace(path + ".tmp", path)  # atomically, like the kubelet's ..data symlink swap
    host, port = standin.url.rsplit("://", 1)[1].rsplit(":", 1)
    cluster = {"server": standin.url}
    if standin.ca_pem:
        cluster["certificate-authority"] = os.path.join(folder, "ca.crt")
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "in-cluster", "cluster": cluster}],
        "users": [{"name": "serviceaccount", "user": {"tokenFile": os.path.join(folder, "token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "serviceaccount", "namespace": exec_request.namespace}}],
    }
    kubeconfig_path = os.path.join(workdir, ".kube", "config")
    os.makedirs(os.path.dirname(kubeconfig_path), mode=0o700, exist_ok=True)
    with open(os.open(kubeconfig_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(kubeconfig, handle)
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port, "KUBERNETES_SERVICE_PORT_HTTPS": port,
            "KUBECONFIG": kubeconfig_path, "STANDIN_SERVICEACCOUNT_DIR": folder}


def serve(handler, exec_request):
    """Upgrade the handler's connection and run the command until it ends or the client goes."""
    protocol = ServerProtocol(subprotocols=SUBPROTOCOLS)
    # http.server already read the request: hand its bytes to the protocol, which parses
    # the handshake itself before the frames.
    raw = handler.requestline + "\r\n" + "".join(f"{key}: {value}\r\n" for key, value in handler.headers.items()) + "\r\n"
    protocol.receive_data(raw.encode("latin1"))
    [request] = [event for event in protocol.events_received() if isinstance(event, WsRequest)]
    response = protocol.accept(request)
    protocol.send_response(response)
    sock = handler.connection
    lock = threading.Lock()

    def flush():
        data = protocol.data_to_send()
        for chunk in data:
            if chunk:
                sock.sendall(chunk)

    with lock:
        flush()
    handler.close_connection = True
    if response.status_code != 101:
        return
    subprotocol = protocol.subprotocol or V4

    def send(channel, payload):
        with lock:
            if subprotocol == BASE64:
                protocol.send_text((str(channel) + base64.b64encode(payload).decode()).encode())
            else:
                protocol.send_binary(bytes([channel]) + payload)
            flush()

    workdir = os.path.join(SCRATCH, exec_request.namespace, exec_request.pod)
    os.makedirs(workdir, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "HOSTNAME": exec_request.pod, "TERM": "xterm",
           "PS1": f"{exec_request.pod}:\\w# "}
    env.update(service_account_environment(getattr(handler.server, "standin", None), exec_request, workdir))
    if exec_request.tty:
        master, slave = pty.openpty()
        process = subprocess.Popen(exec_request.command, stdin=slave, stdout=slave, stderr=slave, cwd=workdir, env=env,
                                   start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        outputs = {master: STDOUT}
        stdin_fd = master
    else:
        process = subprocess.Popen(exec_request.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   cwd=workdir, env=env, start_new_session=True)
        outputs = {process.stdout.fileno(): STDOUT, process.stderr.fileno(): STDERR}
        stdin_fd = process.stdin.fileno()
        master = None

    def pump_output():
        open_fds = dict(outputs)
        while open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], 0.5)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    open_fds.pop(fd, None)
                    continue
                try:
                    send(open_fds[fd], data)
                except (OSError, InvalidState):  # the client went away
                    return
            if not ready and process.poll() is not None and master is not None:
                break
        code = process.wait()
        status = {"metadata": {}, "status": "Success"} if code == 0 else {
            "metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
        try:
            send(ERROR, json.dumps(status).encode())
            with lock:
                protocol.send_close(1000)
                flush()
        except (OSError, InvalidState):
            pass

    pump = threading.Thread(target=pump_output, name=f"exec-{exec_request.pod}", daemon=True)
    pump.start()
    try:
        while pump.is_alive():
            buffered = getattr(sock, "pending", lambda: 0)()  # TLS: decrypted bytes select() cannot see
            ready = buffered or select.select([sock], [], [], 0.5)[0]
            if not ready:
                continue
            data = sock.recv(65536)
            if not data:
                break
            with lock:
                protocol.receive_data(data)
                events = protocol.events_received()
                flush()
            for frame in events:
                if frame.opcode == Opcode.CLOSE:
                    raise EOFError
                if frame.opcode not in (Opcode.BINARY, Opcode.TEXT) or not frame.data:
                    continue
                raw = bytes(frame.data)
                if subprotocol == BASE64:
                    channel, payload = int(chr(raw[0])), base64.b64decode(raw[1:])
                else:
                    channel, payload = raw[0], raw[1:]
                if channel == STDIN and exec_request.stdin:
                    os.write(stdin_fd, payload)
                elif channel == RESIZE and master is not None:
                    size = json.loads(payload or b"{}")
                    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", int(size.get("Height", 24)), int(size.get("Width", 80)), 0, 0))
    except (EOFError, OSError, ValueError):
        pass
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass
        process.wait()
        pump.join(timeout=5)
        if master is not None:
            os.close(master)


def cleanup():
    shutil.rmtree(SCRATCH, ignore_errors=True)
