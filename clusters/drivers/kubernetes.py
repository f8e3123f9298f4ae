"""Kubernetes API driver: an ApiClient for a cluster, and the API's failures as our errors.

Two ways in, chosen by the cluster's credential:
- `kubeconfig`: the stored kubeconfig, with `Cluster.context` (or its current context);
- `kube-token`: `Cluster.endpoint` (https://api:6443), a bearer token and the CA.

Everything here is thin: `connect()` builds an official-client ApiClient with bounded
timeouts and no silent retries, and `api_errors()` turns ApiException and transport
failures into `clusters.drivers.base` errors whose message says what to do. Only job code
calls this module (views never talk to clusters).
"""

import json
import re
import socket
import ssl
from contextlib import contextmanager

import urllib3
import yaml
from django.utils.translation import gettext as _
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from panel.lib import safe_yaml
from panel.lib.quantities import parse_quantity

from .base import AuthFailed, ClusterApiError, CommandTimeout, Conflict, DriverError, HostUnreachable, NotFound, PermissionRefused

# The panel's field manager for server-side apply: every object it applies is owned by it.
FIELD_MANAGER = "filrouge"
CONNECT_TIMEOUT = 10
# Read timeout of one request. Watches and log follows ask the server for less
# (timeoutSeconds) so that they end before this one.
READ_TIMEOUT = 60


class QuotaExceeded(Conflict):
    """The namespace's ResourceQuota refused the change."""


# ---- building a client ---------------------------------------------------------------

def build_kubeconfig(server, token, ca_pem=None, namespace="default", name="filrouge", user="filrouge", insecure=False):
    """A kubeconfig dict for a bearer token: what kubectl and the official client both read."""
    import base64

    cluster = {"server": server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode() if isinstance(ca_pem, str) else ca_pem).decode()
    elif insecure:
        cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user, "namespace": namespace}}],
        "current-context": name,
    }


def kubeconfig_for(cluster):
    """(kubeconfig dict, context name or None) for a cluster, from its credential."""
    credential = cluster.credential
    if credential is None:
        raise AuthFailed(f"Cluster {cluster.name} has no credential. Edit the cluster and choose a kubeconfig or a bearer token.")
    secret = credential.get_secret()
    if credential.kind == "kubeconfig":
        return parse_kubeconfig(secret.get("kubeconfig", "")), (cluster.context or None)
    if credential.kind == "kube-token":
        if not cluster.endpoint.startswith("https://") and not cluster.endpoint.startswith("http://"):
            raise DriverError(f"Cluster {cluster.name}: endpoint {cluster.endpoint!r} is not an https:// API URL. Edit the cluster.")
        return build_kubeconfig(cluster.endpoint, secret.get("token", ""), secret.get("ca_cert") or None, cluster.default_namespace or "default"), None
    raise AuthFailed(f"Cluster {cluster.name}: a {credential.kind} credential cannot reach a Kubernetes API. Choose a kubeconfig or a bearer token.")


def parse_kubeconfig(text):
    """A kubeconfig dict from YAML text (or a dict), with a located error when it is not one."""
    if isinstance(text, dict):
        return text
    try:
        data = safe_yaml.load(text or "")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(exc, safe_yaml.YAMLLimitExceeded):
            where += f": {exc.problem}"
        raise DriverError(f"The kubeconfig is not valid YAML{where}.") from None
    if not isinstance(data, dict) or not data.get("clusters") or not data.get("contexts"):
        raise DriverError("The kubeconfig has no clusters or contexts.")
    return data


def contexts_of(kubeconfig):
    """[(name, cluster server, namespace)] of a kubeconfig dict, and its current context."""
    servers = {item.get("name"): (item.get("cluster") or {}).get("server", "") for item in kubeconfig.get("clusters") or []}
    rows = []
    for item in kubeconfig.get("contexts") or []:
        context = item.get("context") or {}
        rows.append((item.get("name", ""), servers.get(context.get("cluster"), ""), context.get("namespace", "default")))
    return rows, kubeconfig.get("current-context", "")


def connect_kubeconfig(kubeconfig, context=None, ctx=None):
    """An ApiClient from a kubeconfig (text or dict) and an optional context name."""
    data = parse_kubeconfig(kubeconfig)
    if ctx is not None:
        for user in data.get("users") or []:
            for key in ("token", "client-key-data", "password"):
                value = (user.get("user") or {}).get(key)
                if isinstance(value, str) and value:
                    ctx.add_secret(value)
    names = [item.get("name") for item in data.get("contexts") or []]
    if context and context not in names:
        raise DriverError(f"The kubeconfig has no context {context!r}; it has: {', '.join(map(str, names))}.")
    configuration = kube_client.Configuration()
    try:
        loader = kube_config.kube_config.KubeConfigLoader(config_dict=data, active_context=context or None)
        loader.load_and_set(configuration)
    except kube_config.ConfigException as exc:
        raise DriverError(f"The kubeconfig cannot be used: {exc}.") from None
    # One answer per request: a failing API is reported, not retried three times in silence.
    # The one exception is a kept-alive connection the server had already closed.
    configuration.retries = StaleConnectionRetry()
    api_client = kube_client.ApiClient(configuration)
    from django.conf import settings

    read_timeout = getattr(settings, "KUBE_READ_TIMEOUT", READ_TIMEOUT) if settings.configured else READ_TIMEOUT
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout)
    pool = api_client.rest_client.pool_manager
    pool.connection_pool_kw["timeout"] = timeout
    pool.connection_pool_kw["retries"] = StaleConnectionRetry()
    if type(pool) is urllib3.PoolManager:
        # The client passes timeout=None on every request without _request_timeout, which
        # urllib3 reads as "no timeout": a pool that fills in ours keeps a stuck API bounded.
        bounded = _BoundedPoolManager(**pool.connection_pool_kw)
        bounded.default_timeout = timeout
        api_client.rest_client.pool_manager = bounded
        pool.clear()
    return api_client


class StaleConnectionRetry(urllib3.Retry):
    """Send a request again, once, only when the server dropped the pooled connection before
    answering (RemoteDisconnected on a reused keep-alive connection, which API servers and
    proxies do after a watch or an idle spell). Timeouts, refused connections and every
    HTTP status are reported at once. The panel's writes are server-side applies, patches
    and deletes, which are safe to send twice."""

    def __init__(self, **kwargs):
        kwargs.update(total=kwargs.get("total", 1), connect=0, read=kwargs.get("read", 1), status=0, other=0, redirect=0,
                      allowed_methods=frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}), raise_on_status=False)
        super().__init__(**kwargs)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if error is not None and not isinstance(error, urllib3.exceptions.ProtocolError):
            raise error.with_traceback(_stacktrace)
        return super().increment(method, url, response, error, _pool, _stacktrace)


class _BoundedPoolManager(urllib3.PoolManager):
    default_timeout = None

    def urlopen(self, method, url, redirect=True, **kw):
        if kw.get("timeout") is None and self.default_timeout is not None:
            kw["timeout"] = self.default_timeout
        return super().urlopen(method, url, redirect=redirect, **kw)


def connect(cluster, ctx=None):
    """An ApiClient for the cluster (not yet checked: call `server_version` to check)."""
    kubeconfig, context = kubeconfig_for(cluster)
    if ctx is not None and cluster.credential is not None:
        for value in cluster.credential.secret_values():
            ctx.add_secret(value)
    return connect_kubeconfig(kubeconfig, context, ctx=ctx)


# ---- resource metrics and the service proxy ----------------------------------------------

METRICS_PODS = "/apis/metrics.k8s.io/v1beta1/pods"


def _usage(containers, resource):
    """The containers' summed usage of `resource` as a float (an unreadable quantity counts 0)."""
    return float(sum(parse_quantity((c.get("usage") or {}).get(resource, "0")) or 0 for c in containers))


def pod_metrics(api_client, namespace=None):
    """The pods' CPU (cores) and memory (bytes) from the resource metrics API (metrics-server):
    [{"namespace", "pod", "cpu_cores", "memory_bytes", "window", "timestamp"}] for one
    namespace, or every namespace when `namespace` is None, in ONE list call; None when the
    cluster serves no metrics API (no metrics-server: 404, or the group is not registered).

    Other failures (403, unreachable) raise our typed errors."""
    from urllib.parse import quote

    path = METRICS_PODS if namespace is None else f"/apis/metrics.k8s.io/v1beta1/namespaces/{quote(namespace, safe='')}/pods"
    try:
        with api_errors(f"the metrics API of {describe(api_client)}"):
            params = api_client.param_serialize(method="GET", resource_path=path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
            response = api_client.call_api(*params)
            response.read()
            if response.status in (404, 503):
                # 404: the group is not registered; 503: an aggregated API whose server is down
                return None
            data = api_client.response_deserialize(response, {"2XX": "object"}).data  # raises on other errors
            if isinstance(data, (bytes, str)):
                data = json.loads(data or "null")
    except NotFound:
        return None
    rows = []
    for item in (data or {}).get("items") or []:
        meta = item.get("metadata") or {}
        containers = item.get("containers") or []
        rows.append({
            "namespace": meta.get("namespace", ""),
            "pod": meta.get("name", ""),
            "cpu_cores": _usage(containers, "cpu"),
            "memory_bytes": _usage(containers, "memory"),
            "window": item.get("window", ""),
            "timestamp": item.get("timestamp", ""),
        })
    return rows


def service_proxy_target(cluster_or_api_credentials, namespace, service, port=None, ctx=None):
    """What an HTTP client needs to reach a Service through the API server's service proxy:
    `(base_url, headers, ssl_context)`.

    - `cluster_or_api_credentials`: a `Cluster` (the panel's own credential for an operator's
      cluster) or a kubeconfig, as YAML text or dict (e.g. a lab namespace's own credentials,
      `environment.access["kubeconfig"]`: the proxy then runs with the student's rights, and
      RBAC must grant `get` (and `create` for POST) on `services/proxy` in the namespace);
    - `port`: the Service port's number or name (None: its first port).

    `base_url` is `https://API/api/v1/namespaces/NS/services/NAME[:PORT]/proxy`: append the
    request path ("/", "/health"...). `headers` hold the bearer token when the credential has
    one (`{"Authorization": "Bearer ..."}`): never log them; pass `ctx` (a JobContext) and the
    token is registered with `ctx.add_secret`. `ssl_context` verifies the API server with the
    credential's CA and carries its client certificate, if any; None for a plain http:// API.
    Nothing is requested here (no network): a wrong credential shows on the first request
    (401/403), a Service without ready pods as 503 "no endpoints available for service"."""
    host, headers, ssl_context = service_proxy_access(cluster_or_api_credentials, ctx)
    return service_proxy_url(host, namespace, service, port), headers, ssl_context


def service_proxy_url(host, namespace, service, port=None):
    """The service proxy's base URL of one Service on the API server at `host` (what
    `service_proxy_access` returns): no network."""
    from urllib.parse import quote

    name = quote(service, safe="") + (f":{quote(str(port), safe='')}" if port not in (None, "") else "")
    return f"{host}/api/v1/namespaces/{quote(namespace, safe='')}/services/{name}/proxy"


def service_proxy_access(cluster_or_api_credentials, ctx=None):
    """`(api_host, headers, ssl_context)` of `service_proxy_target`, once for many Services
    (build each URL with `service_proxy_url`): the same credential, token and TLS context."""
    from django.apps import apps as django_apps

    cluster_model = django_apps.get_model("clusters", "Cluster")
    if isinstance(cluster_or_api_credentials, cluster_model):
        api_client = connect(cluster_or_api_credentials, ctx)
    else:
        api_client = connect_kubeconfig(cluster_or_api_credentials, ctx=ctx)
    try:
        configuration = api_client.configuration
        host = configuration.host.rstrip("/")
        headers = {}
        authorization = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
        if authorization:
            prefix = (configuration.api_key_prefix or {}).get("authorization", "")
            value = f"{prefix} {authorization}" if prefix and not authorization.startswith(prefix) else authorization
            headers["Authorization"] = value
            if ctx is not None:
                ctx.add_secret(value.split(" ", 1)[-1])
        ssl_context = None
        if host.startswith("https://"):
            if configuration.verify_ssl:
                ssl_context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
                if getattr(configuration, "assert_hostname", None) is False:
                    ssl_context.check_hostname = False
            else:
                ssl_context = ssl.create_default_context()
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file and configuration.key_file:
                ssl_context.load_cert_chain(configuration.cert_file, configuration.key_file)
    finally:
        api_client.close()
    return host, headers, ssl_context


# ---- API warnings ----------------------------------------------------------------------

_WARNING = re.compile(r'^\s*(\d{3})\s+(\S+)\s+"((?:[^"\\]|\\.)*)"')


def response_warnings(response):
    """The texts of the `Warning: 299 - "..."` headers of an answer (deprecated APIs and
    fields, as kubectl prints them), in order, without repeats.

    `response` is what the official client's `call_api` returns (a RESTResponse) or a
    urllib3 response; repeated headers are read one by one, so a comma inside a text
    does not split it."""
    raw = getattr(response, "response", response)
    headers = getattr(raw, "headers", None)
    if headers is None:
        return []
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else [headers.get("Warning")] if headers.get("Warning") else []
    texts = []
    for value in values:
        remaining = value
        while remaining:
            found = _WARNING.match(remaining)
            if not found:
                text = remaining.strip()
                remaining = ""
            else:
                text = re.sub(r"\\(.)", r"\1", found.group(3))
                remaining = remaining[found.end():].lstrip().lstrip(",")
            if text and text not in texts:
                texts.append(text)
    return texts


def describe(api_client):
    """The API URL a client talks to, for messages."""
    return api_client.configuration.host


def server_version(api_client):
    """The server's gitVersion (v1.30.2), or a typed error saying why it cannot be read."""
    with api_errors(f"the Kubernetes API at {describe(api_client)}"):
        return kube_client.VersionApi(api_client).get_code().git_version


# ---- error translation ---------------------------------------------------------------

# How the API server says a body does not decode into its kind: server-side apply's typed
# conversion (structured-merge-diff) and the JSON decoder of create/update.
DECODE_FAILURE = re.compile(
    r"failed to create typed patch object|cannot be handled as a|json: cannot unmarshal|unrecognized type: |"
    r"field not declared in schema|expected (numeric \(int or float\)|string|boolean|list|map), got"
)

@contextmanager
def api_errors(what):
    """Turn ApiException and transport failures raised inside the block into our errors."""
    try:
        yield
    except DriverError:
        raise
    except Exception as exc:  # noqa: BLE001 - every client failure becomes a typed, readable error
        translated = translate(exc, what)
        if translated is None:
            raise
        raise translated from None


def status_message(exc):
    """The `message` of a Status body, or the reason phrase."""
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
            if isinstance(data, dict) and data.get("message"):
                return str(data["message"])
        except (ValueError, TypeError):
            return str(body)[:300]
    return str(getattr(exc, "reason", "") or exc)


def translate(exc, what):
    if isinstance(exc, ApiException):
        if not exc.status and ("SSL" in str(exc.reason) or "certificate" in str(exc.reason)):
            return _tls_error(str(exc.reason), what)
        return _from_status(exc.status, status_message(exc), what)
    if isinstance(exc, kube_config.ConfigException):
        return DriverError(f"The kubeconfig for {what} cannot be used: {exc}.")
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return translate(exc.reason, what) or HostUnreachable(f"Cannot reach {what} ({exc.reason}).")
    if isinstance(exc, (urllib3.exceptions.SSLError, ssl.SSLError)) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return _tls_error(str(exc), what)
    if isinstance(exc, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
        return HostUnreachable(f"Cannot reach {what} ({_short(str(exc))}). Is the API server running and the address right?")
    if isinstance(exc, (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError, socket.timeout, TimeoutError)):
        return CommandTimeout(f"{what} did not answer in time. Is the API server overloaded or the network slow?")
    if isinstance(exc, (urllib3.exceptions.ProtocolError, urllib3.exceptions.NewConnectionError, ConnectionError)):
        return HostUnreachable(f"Cannot reach {what} ({_short(str(exc))}). Is the API server running and the address right?")
    return None


def _tls_error(text, what):
    if "expired" in text:
        return AuthFailed(f"The TLS certificate of {what} has expired (or the CA in the credential has). Renew it, then update the cluster's credential.")
    return AuthFailed(f"The TLS certificate of {what} cannot be verified ({_short(text)}). Check the CA in the cluster's credential.")


def _from_status(status, message, what):
    if status == 401:
        return AuthFailed(f"{what} refused the credentials (401 Unauthorized): the token or certificate is wrong or has expired. Update the cluster's credential.")
    if status == 403:
        if "exceeded quota" in message:
            return QuotaExceeded(f"The namespace quota refused it: {message}. Lower the requests or ask for a larger quota.")
        return PermissionRefused(f"{what} forbids it (403): {message}. The credential's account lacks this permission (RBAC).")
    if status == 404:
        return NotFound(_("Not found on %(what)s: %(error)s.") % {"what": what, "error": message})
    if status == 409:
        # Server-side apply: 'Apply failed with 1 conflict: conflict with "helm" using apps/v1: .spec.replicas'
        if "conflict with" in message.lower() or "manager" in message.lower():
            return Conflict(f"Another field manager owns these fields on {what}: {message}. Change them with the tool that owns them, or apply again with force to take them over.")
        return Conflict(f"{what} refused the change (409 Conflict): {message}.")
    if status == 422:
        return ClusterApiError(f"{what} rejected the object as invalid (422): {message}.")
    if status == 429:
        return ClusterApiError(f"{what} is throttling requests (429): {message}. Try again in a moment.")
    if status == 0:
        return HostUnreachable(f"Cannot reach {what}: {message}.")
    if status == 400 and DECODE_FAILURE.search(message):
        return ClusterApiError(f"{what} could not decode the object (400 BadRequest): {message}. A field has the wrong type; fix it in the manifest.")
    if status and status >= 500 and DECODE_FAILURE.search(message):
        # Server-side apply answers 500 when the body does not convert to its kind's schema
        # (kubernetes/kubernetes#122480): the manifest is at fault, not the server.
        return ClusterApiError(f"{what} could not decode the object: {message}. A field has the wrong type or is not part of the kind; "
                               "fix it in the manifest (the API server answered HTTP 500, but it is not in trouble).")
    if status and status >= 500:
        return ClusterApiError(f"{what} failed with HTTP {status}: {message}. The API server or an admission webhook is in trouble; try again, then check the control plane.")
    return ClusterApiError(f"{what} answered HTTP {status}: {message}.")


def _short(text):
    for pattern in (r"\[SSL: [A-Z0-9_]+\] ([^(']+?)\s*\(_ssl", r"(Connection refused|Name or service not known|timed out|No route to host)"):
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return text[:300]


# ---- interactive sessions (terminals) ------------------------------------------------

SHELL_COMMAND = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]
RESIZE_CHANNEL = 4
ERROR_CHANNEL = 3


class PodExecSession:
    """A shell in a pod's container over the API's exec websocket (the official client's
    `kubernetes.stream`), with a TTY resized through channel 4.

    The terminal session interface (see clusters.drivers.ssh.SshShellSession)."""

    def __init__(self, client, what):
        self.client = client
        self.what = what
        self._closed = False
        self._status = None

    def read(self, size=65536):
        from websocket import WebSocketException

        while True:
            try:
                if not self.client.is_open():
                    return b""
                self.client.update(timeout=1)
                out = self.client.read_stdout(timeout=0) + self.client.read_stderr(timeout=0)
            except (WebSocketException, OSError, ValueError, AttributeError, TypeError):  # TypeError: the socket was closed under us
                return b""
            if out:
                return out

    def write(self, data):
        from websocket import WebSocketException

        try:
            self.client.write_stdin(data)
        except (WebSocketException, OSError, AttributeError) as exc:
            raise HostUnreachable(f"The shell in {self.what} is gone ({exc}).") from None

    def resize(self, cols, rows):
        try:
            self.client.write_channel(RESIZE_CHANNEL, json.dumps({"Width": cols, "Height": rows}))
        except Exception:  # noqa: BLE001 - a resize racing the end of the shell is harmless
            pass

    @property
    def exit_status(self):
        if self.client.is_open():
            return None
        try:
            return self.client.returncode
        except Exception:  # noqa: BLE001 - no status frame: unknown
            return None

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a broken socket
            pass


DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def default_container(names, annotations):
    """The container kubectl picks: the pod's default-container annotation when it names one of them, else the first."""
    wanted = (annotations or {}).get(DEFAULT_CONTAINER_ANNOTATION, "")
    return wanted if wanted in names else (names[0] if names else "")


class PodNotRunning(Conflict):
    """The pod exists but is not Running (`phase` says what it is)."""

    def __init__(self, message, phase):
        super().__init__(message)
        self.phase = phase


def open_exec_session(cluster, namespace, pod, container="", cols=80, rows=24, command=None, kubeconfig=None):
    """Start `command` (bash, else sh) in the pod's container with a TTY of cols×rows.

    `kubeconfig` (text or dict): exec with it instead of the cluster's credential (an
    isolated namespace's own, so the shell can do no more than its account may).
    Without `container`, the pod's default container (annotation, else the first).
    Raises NotFound for a missing pod or container, PodNotRunning (a Conflict) for a pod
    that is not running, PermissionRefused when the credential may not exec."""
    from kubernetes.stream import stream

    api_client = connect_kubeconfig(kubeconfig) if kubeconfig else connect(cluster)
    core = kube_client.CoreV1Api(api_client)
    what = f"pod {namespace}/{pod}" + (f" ({container})" if container else "") + f" on {cluster.name}"
    with api_errors(what):
        found = core.read_namespaced_pod(pod, namespace)
        phase = (found.status.phase if found.status else "") or "Unknown"
        if phase != "Running":
            raise PodNotRunning(f"{what} is {phase}, not Running: a shell needs a running container.", phase)
        names = [item.name for item in found.spec.containers]
        if container and container not in names:
            raise NotFound(f"{what}: no container {container!r}; it has {', '.join(names)}.")
        kwargs = {"container": container or default_container(names, found.metadata.annotations)}
        client = stream(
            core.connect_get_namespaced_pod_exec, pod, namespace, command=command or SHELL_COMMAND,
            stdin=True, stdout=True, stderr=True, tty=True, _preload_content=False, binary=True, **kwargs,
        )
    session = PodExecSession(client, what)
    session.resize(cols, rows)
    return session
