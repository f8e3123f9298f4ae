"""``KubeStandin``: the object tests hold.  It wires the store, registry,
controllers, authentication and HTTP server together, seeds a fresh
"cluster" (namespaces, nodes, default RBAC, the ``kubernetes`` Service), and
offers the test-only levers: playing the kubelet, fault injection, request
logging, token expiry and TLS failure kubeconfigs.
"""

from __future__ import annotations

import base64
import http.client
import secrets
import ssl
import threading
import time

import yaml

from . import tls as tlsmod
from .appload import AppEmulation
from .auth import Authenticator, Identity
from .cluster import ControllerManager
from .logs import PodLogs
from .meta import clone, dig
from .rbac import DEFAULT_BINDINGS, Authorizer, default_cluster_roles
from .registry import Registry
from .resources import BY_KEY
from .rest import Api
from .server import StandinHTTPServer
from .store import Store

SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def _node(name, index, control_plane):
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    capacity = {"cpu": "4", "memory": "16310376Ki", "pods": "110", "ephemeral-storage": "102626232Ki",
                "hugepages-2Mi": "0"}
    ts = "2026-01-01T00:00:00Z"
    conditions = [
        {"type": t, "status": "False", "reason": r, "message": m, "lastHeartbeatTime": ts, "lastTransitionTime": ts}
        for t, r, m in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
    conditions.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                       "message": "kubelet is posting ready status", "lastHeartbeatTime": ts,
                       "lastTransitionTime": ts})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"],
                     "providerID": f"standin://{name}",
                     **({"taints": []} if not control_plane else {})},
            "status": {"capacity": capacity, "allocatable": dict(capacity, cpu="3800m"),
                       "conditions": conditions,
                       "addresses": [{"type": "InternalIP", "address": f"172.18.0.{index + 2}"},
                                     {"type": "Hostname", "address": name}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                       "nodeInfo": {"machineID": f"{index:032x}", "systemUUID": f"{index:032x}",
                                    "bootID": f"{index:032x}", "kernelVersion": "6.8.0", "osImage":
                                    "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion": "containerd://2.1.0",
                                    "kubeletVersion": "v1.37.0", "kubeProxyVersion": "", "operatingSystem": "linux",
                                    "architecture": "amd64"}}}


class KubeStandin:
    def __init__(self, tls=True, nodes=2, cert_dir=None):
        self.tls = tls
        self.node_count = max(1, min(3, nodes))
        self.cert_dir = cert_dir
        # kubelet and fault-injection levers
        self.kubelet_mode = "auto"
        self.auto_ready_delay = 0.2
        self.failing_images = []
        self.failing_reason = "ImagePullBackOff"
        # Play an older cluster that still serves (deprecated) versions now removed, such as
        # storage.k8s.io/v1beta1 (CSIStorageCapacity only, as in Kubernetes 1.24-1.26).
        self.serve_legacy_versions = False
        self.termination_delay = 0.1
        self.bookmark_interval = 5.0
        self._default_app_levers()
        self.app = AppEmulation(self)
        self.request_log = []
        self._faults = []
        self._lock = threading.Lock()
        self.store = Store()
        self.authn = Authenticator()
        self.authorizer = Authorizer(self.store)
        self.logs = PodLogs()
        self.admin_token = secrets.token_urlsafe(32)
        self.authn.add_static(self.admin_token, Identity("kubernetes-admin", ("system:masters", "system:authenticated")))
        self.ca_pem = None
        self._admin_cert = None
        self._client_ca = None
        self.url = None
        self.server_address = None
        self._certs = None
        self._server = None
        self._thread = None
        self.registry = None
        self.controllers = None
        self.api = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self):
        context = None
        if self.tls:
            self._certs = tlsmod.ensure_certs(self.cert_dir)
            self.ca_pem = self._certs.ca_pem
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self._certs.cert_file, self._certs.key_file)
            # Client certificates signed by the client CA authenticate (CN = user, O = groups),
            # as kube-apiserver's --client-ca-file does; clients with a bearer token send none.
            self._client_ca = tlsmod.make_client_ca()
            context.load_verify_locations(cadata=self._client_ca.ca_pem)
            context.verify_mode = ssl.CERT_OPTIONAL
        self.registry = Registry(self.store, self.ca_pem or "")
        self._seed()
        self.controllers = ControllerManager(self.registry, self)
        self.api = Api(self)
        self._server = StandinHTTPServer(("127.0.0.1", 0), self, context)
        port = self._server.server_address[1]
        self.server_address = f"127.0.0.1:{port}"
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self.controllers.start()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kube-standin-http", daemon=True)
        self._thread.start()
        self._wait_ready()
        return self

    def _wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        host, port = self.server_address.split(":")
        while True:
            try:
                if self.tls:
                    ctx = ssl.create_default_context(cadata=self.ca_pem)
                    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=2)
                else:
                    conn = http.client.HTTPConnection(host, int(port), timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self):
        self.store.close()          # ends watches (they send their final chunk)
        self.logs.close()           # ends followed logs
        if self._server is not None:
            self._server.shutdown()
            time.sleep(0.05)
            self._server.close_connections()
            self._server.server_close()
        if self.controllers is not None:
            self.controllers.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _seed(self):
        reg = self.registry
        for ns in SEED_NAMESPACES:
            reg.create(BY_KEY["/namespaces"], "", {"metadata": {"name": ns}}, "kube-apiserver")
        for i in range(self.node_count):
            name = "standin-control-plane" if i == 0 else f"standin-worker{'' if i == 1 else i}"
            reg.create(BY_KEY["/nodes"], "", _node(name, i, i == 0), "kubelet")
        for name, rules in default_cluster_roles().items():
            reg.create(BY_KEY["rbac.authorization.k8s.io/clusterroles"], "",
                       {"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                        "rules": rules}, "kube-apiserver")
        for name, (kind, subject) in DEFAULT_BINDINGS.items():
            reg.create(BY_KEY["rbac.authorization.k8s.io/clusterrolebindings"], "",
                       {"metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}]},
                       "kube-apiserver")
        reg.create(BY_KEY["/services"], "default",
                   {"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                    "spec": {"clusterIP": "10.96.0.1",
                             "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}},
                   "kube-apiserver")

    # --- client conveniences -------------------------------------------------------------------
    def client_certificate(self, username="kubernetes-admin", groups=("system:masters",)):
        """(certificate PEM, key PEM) of a client certificate the client CA signed: CN is the user, O the groups."""
        if not self.tls:
            raise RuntimeError("client certificates need the TLS stand-in")
        return tlsmod.client_cert(self._client_ca, username, groups)

    def kubeconfig(self, path=None, context="standin", namespace="default", token=None, ca_pem=None, client_cert=False):
        """A kubeconfig for this stand-in: with the admin bearer token (or `token`), or,
        with client_cert=True, with an admin client certificate and key as kubeadm's
        admin.conf has (client-certificate-data / client-key-data, no token)."""
        cluster = {"server": self.url}
        ca = ca_pem if ca_pem is not None else self.ca_pem
        if ca:
            cluster["certificate-authority-data"] = base64.b64encode(ca.encode()).decode()
        user = f"{context}-user"
        if client_cert:
            if self._admin_cert is None:
                self._admin_cert = self.client_certificate()
            cert_pem, key_pem = self._admin_cert
            credentials = {"client-certificate-data": base64.b64encode(cert_pem.encode()).decode(),
                           "client-key-data": base64.b64encode(key_pem.encode()).decode()}
        else:
            credentials = {"token": token or self.admin_token}
        doc = {"apiVersion": "v1", "kind": "Config", "preferences": {},
               "clusters": [{"name": context, "cluster": cluster}],
               "users": [{"name": user, "user": credentials}],
               "contexts": [{"name": context, "context": {"cluster": context, "user": user,
                                                          "namespace": namespace}}],
               "current-context": context}
        text = yaml.safe_dump(doc, sort_keys=False)
        if path:
            with open(path, "w") as f:
                f.write(text)
        return text

    def make_expired_ca_kubeconfig(self, path=None, **kwargs):
        """A kubeconfig trusting an expired copy of the CA: verification must fail."""
        return self.kubeconfig(path, ca_pem=tlsmod.expired_ca_pem(self._certs), **kwargs)

    def make_wrong_ca_kubeconfig(self, path=None, **kwargs):
        """A kubeconfig trusting an unrelated CA: verification must fail."""
        return self.kubeconfig(path, ca_pem=tlsmod.unrelated_ca_pem(), **kwargs)

    def api_client(self, token=None, kubeconfig_text=None):
        import kubernetes
        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config_from_dict(yaml.safe_load(kubeconfig_text or self.kubeconfig(token=token)),
                                                     client_configuration=cfg)
        return kubernetes.client.ApiClient(cfg)

    def issue_user_token(self, username, groups=()):
        """A bearer token for a plain user (RBAC applies to it like to any user)."""
        return self.authn.new_user_token(username, groups)

    # --- playing the kubelet -------------------------------------------------------------------
    def set_pod_phase(self, namespace, name, ready=True, phase="Running", waiting_reason=None, restart_count=0):
        kubelet = self.controllers.kubelet
        with self.store.lock:
            pod = self.store.get("/pods", namespace, name)
            if pod is None:
                raise KeyError(f'pods "{name}" not found in namespace "{namespace}"')
            if not dig(pod, "spec", "nodeName"):
                kubelet.sync()
                pod = self.store.get("/pods", namespace, name)
            waiting = None
            if waiting_reason:
                waiting = {c["name"]: waiting_reason for c in pod["spec"]["containers"]}
            return kubelet.set_phase(pod, ready=ready, phase=phase, waiting=waiting, restart_count=restart_count)

    def append_pod_log(self, namespace, name, text, container=None):
        if container is None:
            pod = self.store.get("/pods", namespace, name)
            containers = dig(pod, "spec", "containers", default=[]) if pod else []
            container = containers[0]["name"] if containers else name
        self.logs.append(namespace, name, container, text)

    # --- fault injection and observation -------------------------------------------------------
    def inject_fault(self, status=500, count=1, path_prefix=None, delay=None, method=None, message=None):
        """The next ``count`` matching requests sleep ``delay`` s, then answer ``status`` (None: proceed)."""
        with self._lock:
            self._faults.append({"status": status, "remaining": count, "prefix": path_prefix, "delay": delay,
                                 "method": method, "message": message})

    def clear_faults(self):
        with self._lock:
            self._faults = []

    def _take_fault(self, method, path):
        with self._lock:
            for fault in self._faults:
                if fault["remaining"] <= 0:
                    continue
                if fault["prefix"] and not path.startswith(fault["prefix"]):
                    continue
                if fault["method"] and fault["method"].upper() != method:
                    continue
                fault["remaining"] -= 1
                return fault
        return None

    def _log_request(self, method, path):
        with self._lock:
            self.request_log.append((method, path))

    def reset_request_log(self):
        with self._lock:
            self.request_log = []

    def expire_token(self, token):
        self.authn.expire(token)

    def compact_history(self):
        """Forget the watch history, so older resourceVersions answer 410 Gone."""
        self.store.compact()

    def reset_behaviour(self):
        """Back to defaults: auto kubelet, no failing images, no pending faults."""
        self.kubelet_mode = "auto"
        self.auto_ready_delay = 0.2
        self.failing_images = []
        self.failing_reason = "ImagePullBackOff"
        self.serve_legacy_versions = False
        self._default_app_levers()
        self.app.reset()
        self.clear_faults()

    def _default_app_levers(self):
        # metrics-server and the HPA controller (appload.py, autoscaler.py), at a real cluster's pace
        self.metrics_server = True
        self.metrics_window = 15.0
        self.hpa_sync_period = 15.0
        # the application every pod emulates behind the service proxy
        self.app_cpu_per_request = 0.05
        self.app_base_latency = 0.002
        self.app_idle_cpu = 0.001
        self.app_memory = "20Mi"

    def objects(self, key, namespace=None):
        """Direct read of stored objects (storage version) for assertions."""
        return [clone(o) for o in self.store.items(key, namespace)]
