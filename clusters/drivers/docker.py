"""Docker Engine driver: reach an engine and translate its failures into our errors.

Three ways in, chosen by `Cluster.endpoint`:
- `unix:///var/run/docker.sock` (the default when the endpoint is empty);
- `tcp://host:2376` with TLS client certificates from a `docker-tls` credential;
- `ssh://` through `Cluster.server` (an inventory Server) and its credential, with the
  Server's pinned host key written to a known_hosts file: an unknown or changed host
  key is refused, never added.

Everything here is thin: it opens a docker SDK client, and `docker_errors()` turns the
SDK's exceptions into `clusters.drivers.base` errors whose message says what to do.
Only job code calls this module.
"""

import io
import os
import re
import shutil
import socket
import ssl
import tempfile
from contextlib import contextmanager

import docker
import paramiko
import requests
from docker.transport import SSHHTTPAdapter
from django.utils.translation import gettext as _

from .base import AuthFailed, ClusterApiError, CommandTimeout, Conflict, DriverError, HostKeyMismatch, HostUnreachable, NotFound

DEFAULT_ENDPOINT = "unix:///var/run/docker.sock"
API_TIMEOUT = 60
CONNECT_TIMEOUT = 10


class EngineConnection:
    """An open docker SDK client plus what it needed on disk (TLS files, known_hosts)."""

    def __init__(self, client, description, cleanup=()):
        self.client = client
        self.description = description
        self._cleanup = list(cleanup)

    @property
    def api(self):
        return self.client.api

    def close(self):
        try:
            self.client.close()
        finally:
            for path in self._cleanup:
                shutil.rmtree(path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(cluster, ctx=None, timeout=API_TIMEOUT):
    """Open a client for the cluster's engine and check that it answers.

    Registers every secret it reads with `ctx.add_secret`. Raises HostUnreachable,
    AuthFailed, HostKeyMismatch or ClusterApiError with the endpoint in the message.
    """
    endpoint = (cluster.endpoint or DEFAULT_ENDPOINT).strip()
    credential = cluster.credential
    if credential is not None and ctx is not None:
        for value in credential.secret_values():
            ctx.add_secret(value)
    if endpoint.startswith("unix://"):
        connection = _connect_unix(endpoint, timeout)
    elif endpoint.startswith(("tcp://", "https://")):
        connection = _connect_tls(endpoint, credential, timeout)
    elif endpoint.startswith("ssh://"):
        connection = _connect_ssh(cluster, endpoint, timeout)
    else:
        raise DriverError(f"Cluster {cluster.name}: endpoint {endpoint!r} is not unix://, tcp:// or ssh://. Edit the cluster.")
    try:
        with docker_errors(f"the Docker engine at {connection.description}"):
            connection.api.ping()
    except DriverError:
        connection.close()
        raise
    return connection


@contextmanager
def engine(cluster, ctx=None, timeout=API_TIMEOUT):
    """`with engine(cluster, ctx) as conn:` opens, checks and always closes a connection."""
    connection = connect(cluster, ctx=ctx, timeout=timeout)
    try:
        yield connection
    finally:
        connection.close()


def _connect_unix(endpoint, timeout):
    path = endpoint[len("unix://"):]
    if not os.path.exists(path):
        raise HostUnreachable(f"No Docker socket at {path}: is the engine installed and running on the panel's host?")
    return EngineConnection(docker.DockerClient(base_url=endpoint, timeout=timeout, version="auto"), endpoint)


def _connect_tls(endpoint, credential, timeout):
    if credential is None or credential.kind != "docker-tls":
        raise AuthFailed(f"{endpoint} needs a 'docker-tls' credential (CA, client certificate and key). Attach one to the cluster.")
    secret = credential.get_secret()
    workdir = tempfile.mkdtemp(prefix="filrouge-docker-tls-")
    paths = {}
    for name in ("ca_cert", "client_cert", "client_key"):
        paths[name] = os.path.join(workdir, f"{name}.pem")
        with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
            handle.write(secret.get(name, ""))
    tls = docker.tls.TLSConfig(client_cert=(paths["client_cert"], paths["client_key"]), ca_cert=paths["ca_cert"], verify=True)
    base_url = "https://" + endpoint.split("://", 1)[1]
    # A fixed version first, so that no request is made before trust_env is off: otherwise
    # REQUESTS_CA_BUNDLE / *_PROXY from the environment would replace our CA and route.
    client = docker.DockerClient(base_url=base_url, tls=tls, timeout=timeout, version="1.24")
    client.api.trust_env = False
    try:
        client.api._version = client.api._retrieve_server_version()
    except docker.errors.DockerException as exc:
        client.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise _translate(exc, f"the Docker engine at {endpoint}") from None
    return EngineConnection(client, endpoint, cleanup=[workdir])


class _PinnedSSHAdapter(SSHHTTPAdapter):
    """The SDK's paramiko adapter, but with our key, our known_hosts and no ~/.ssh lookups."""

    def __init__(self, ssh_params, known_hosts_path, timeout):
        self._params = ssh_params
        self._known_hosts_path = known_hosts_path
        super().__init__(f"ssh://{ssh_params['hostname']}", timeout=timeout)

    def _create_paramiko_client(self, base_url):
        self.ssh_client = paramiko.SSHClient()
        self.ssh_client.load_host_keys(self._known_hosts_path)
        self.ssh_client.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.ssh_params = self._params


def _known_hosts_entry(server):
    host = server.address if server.port == 22 else f"[{server.address}]:{server.port}"
    return f"{host} {server.pinned_host_key.strip()}\n"


def _connect_ssh(cluster, endpoint, timeout):
    server = cluster.server
    if server is None:
        raise DriverError(f"Cluster {cluster.name} uses {endpoint} but names no inventory server. Choose the server the engine runs on.")
    if not server.pinned_host_key:
        raise HostKeyMismatch(
            f"{server.name} has no pinned SSH host key yet, so its identity cannot be checked. "
            "Pin it first (the server's connect test), then try again."
        )
    credential = cluster.credential or server.credential
    params = {
        "hostname": server.address,
        "port": server.port,
        "username": server.user,
        "timeout": CONNECT_TIMEOUT,
        "banner_timeout": CONNECT_TIMEOUT,
        "auth_timeout": CONNECT_TIMEOUT,
        "look_for_keys": False,
        "allow_agent": False,
    }
    if credential is None:
        raise AuthFailed(f"Neither cluster {cluster.name} nor server {server.name} has a credential to log in with.")
    secret = credential.get_secret()
    if credential.kind == "ssh-key":
        params["pkey"] = _private_key(secret)
    elif credential.kind == "password":
        params["password"] = secret.get("password", "")
    else:
        raise AuthFailed(f"Credential {credential.name} is a {credential.kind}; SSH needs an ssh-key or password credential.")
    workdir = tempfile.mkdtemp(prefix="filrouge-docker-ssh-")
    known_hosts = os.path.join(workdir, "known_hosts")
    with open(known_hosts, "w") as handle:
        handle.write(_known_hosts_entry(server))
    where = f"{server.user}@{server.address}:{server.port} ({server.name})"
    try:
        adapter = _PinnedSSHAdapter(params, known_hosts, timeout)
    except paramiko.BadHostKeyException as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HostKeyMismatch(
            f"{server.name} presented a different SSH host key ({exc.key.get_name()} "
            f"{exc.key.fingerprint}) than the pinned one ({exc.expected_key.fingerprint}). "
            "If the server was reinstalled, re-pin its key; otherwise do not connect."
        ) from None
    except paramiko.AuthenticationException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise AuthFailed(f"{where} refused the login with credential {credential.name}. Check the user and the key or password.") from None
    except paramiko.SSHException as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        if "not found in known_hosts" in str(exc):
            raise HostKeyMismatch(f"{server.name} presented a host key of a kind that was not pinned. Re-pin its key.") from None
        raise HostUnreachable(f"SSH to {where} failed: {exc}.") from None
    except (OSError, socket.timeout) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise HostUnreachable(f"Cannot reach {where}: {exc.strerror or exc}. Is the server up and its SSH port open?") from None
    api = docker.APIClient(base_url="http://127.0.0.1:2375", version="1.41", timeout=timeout)
    api.close()  # the plain HTTP adapter made for that placeholder URL is never used
    api._custom_adapter = adapter
    api.mount("http+docker://ssh", adapter)
    api.base_url = "http+docker://ssh"
    client = docker.DockerClient.__new__(docker.DockerClient)
    client.api = api
    try:
        with docker_errors(f"the Docker engine on {where}"):
            api._version = api._retrieve_server_version()
    except DriverError:
        adapter.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return EngineConnection(client, f"ssh://{where}", cleanup=[workdir])


def _private_key(secret):
    text, passphrase = secret.get("private_key", ""), secret.get("passphrase") or None
    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text), password=passphrase)
        except (paramiko.SSHException, ValueError):
            continue
    raise AuthFailed("The SSH credential's private key cannot be read (wrong passphrase or not a private key).")


# ---- error translation --------------------------------------------------------------

_PORT_TAKEN = re.compile(r"(port is already allocated|address already in use|bind for .* failed)", re.I)


@contextmanager
def docker_errors(what):
    """Turn docker SDK and transport exceptions raised inside the block into our errors."""
    try:
        yield
    except DriverError:
        raise
    except Exception as exc:  # noqa: BLE001 - every SDK failure becomes a typed, readable error
        translated = _translate(exc, what)
        if translated is None:
            raise
        raise translated from None


def _translate(exc, what):
    if isinstance(exc, docker.errors.ImageNotFound):
        return NotFound(f"Image not found for {what}: {_explanation(exc)}.")
    if isinstance(exc, docker.errors.NotFound):
        return NotFound(_("Not found on %(what)s: %(error)s.") % {"what": what, "error": _explanation(exc)})
    if isinstance(exc, docker.errors.APIError):
        text = _explanation(exc)
        if exc.status_code == 401 or "unauthorized" in text.lower() or "authentication required" in text.lower():
            return AuthFailed(f"{what} refused the login: {text}. Check the registry credential.")
        if _PORT_TAKEN.search(text):
            return Conflict(f"A host port is already taken on {what}: {text}. Free the port or choose another published port.")
        if exc.status_code == 409:
            return Conflict(f"{what} refused the change: {text}.")
        return ClusterApiError(f"{what} answered with an error: {text}.")
    if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError)):
        return AuthFailed(
            f"The TLS handshake with {what} failed ({_short(exc)}). Check that the CA, client certificate "
            "and key of the credential belong to this engine."
        )
    if isinstance(exc, (requests.exceptions.ReadTimeout, socket.timeout, TimeoutError)):
        return CommandTimeout(f"{what} did not answer in time ({_short(exc)}).")
    if isinstance(exc, (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError)):
        if "SSL" in str(exc) or "certificate" in str(exc).lower():
            return AuthFailed(f"The TLS handshake with {what} failed ({_short(exc)}). Check the credential's certificates.")
        return HostUnreachable(f"Cannot reach {what} ({_short(exc)}). Is the engine running and the address right?")
    if isinstance(exc, docker.errors.DockerException):
        text = str(exc)
        if "SSL" in text or "certificate" in text.lower():
            return AuthFailed(
                f"The TLS handshake with {what} failed ({_short(exc)}). Check that the CA, client certificate "
                "and key of the credential belong to this engine."
            )
        if "Connection refused" in text or "Max retries exceeded" in text or "timed out" in text:
            return HostUnreachable(f"Cannot reach {what} ({_short(exc)}). Is the engine running and the address right?")
        return ClusterApiError(f"{what}: {_short(exc)}.")
    if isinstance(exc, paramiko.SSHException):
        return HostUnreachable(f"The SSH link to {what} broke: {exc}.")
    return None


def _explanation(exc):
    return str(getattr(exc, "explanation", None) or exc).strip().rstrip(".")


def _short(exc):
    """The useful bit of a transport error ("tlsv1 alert unknown ca", "Connection refused")."""
    text = str(exc)
    for pattern in (r"\[SSL: [A-Z0-9_]+\] ([^(']+?)\s*\(_ssl", r"SSL\w*Error\(\d+, '([^'(]+?)\s*(?:\(_ssl|')", r"\] ([^\]'(]+?)(?:'|\)|$)", r"(Connection refused|Name or service not known|timed out|No route to host)"):
        found = re.search(pattern, text)
        if found:
            return found.group(1).strip()
    return text[:300].rstrip(".")


# ---- verbs used by the engine jobs ------------------------------------------------------

def engine_version(connection):
    """{"version", "api_version", "os", "arch", "swarm"}: one `version` and one `info` call."""
    with docker_errors(f"the Docker engine at {connection.description}"):
        version = connection.api.version()
        info = connection.api.info()
    swarm = info.get("Swarm") or {}
    return {
        "version": version.get("Version", ""),
        "api_version": version.get("ApiVersion", ""),
        "os": version.get("Os", ""),
        "arch": version.get("Arch", ""),
        "swarm": swarm.get("LocalNodeState", "inactive"),
        "swarm_manager": bool(swarm.get("ControlAvailable")),
        "name": info.get("Name", ""),
    }


def registry_auth(credential, ctx=None):
    """The SDK's auth_config for a `registry` credential (None without one)."""
    if credential is None:
        return None
    if credential.kind != "registry":
        raise AuthFailed(f"Credential {credential.name} is a {credential.kind}, not a registry login.")
    secret = credential.get_secret()
    if ctx is not None:
        for value in credential.secret_values():
            ctx.add_secret(value)
    return {"username": credential.username, "password": secret.get("password", "")}


def image_registry(reference):
    """The registry host of an image reference, or "" for Docker Hub / local names."""
    first = reference.split("/", 1)[0]
    if "/" in reference and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def ensure_image(connection, image, tag, auth=None, ctx=None):
    """Make `image:tag` present on the engine.

    Images named with a registry host are always pulled (a tag may have moved); others
    are pulled only when missing, since a local build has no registry to come from.
    """
    reference = f"{image}:{tag}"
    where = f"the Docker engine at {connection.description}"
    if not image_registry(image):
        try:
            connection.api.inspect_image(reference)
            return "present"
        except docker.errors.ImageNotFound:
            pass
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, where) or exc from None
    try:
        for event in connection.api.pull(image, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise _pull_error(reference, event.get("error", ""), auth)
    except DriverError:
        raise
    except docker.errors.APIError as exc:
        raise _pull_error(reference, _explanation(exc), auth) from None
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, where) or exc from None
    if ctx is not None:
        ctx.changed(f"pulled {reference}", task="pull")
    return "pulled"


def _pull_error(reference, text, auth):
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered and "access" in lowered:
        hint = "Check the registry credential's user and password." if auth else "Attach a registry credential to the service."
        return AuthFailed(f"The registry refused to give {reference}: {text}. {hint}")
    if "not found" in lowered or "manifest unknown" in lowered or "does not exist" in lowered:
        return NotFound(f"Image {reference} is not in its registry ({text}). Check the image name and tag, or push it first.")
    if "connection refused" in lowered or "no such host" in lowered or "timeout" in lowered:
        return HostUnreachable(f"The registry of {reference} cannot be reached: {text}.")
    return ClusterApiError(f"Pulling {reference} failed: {text}.")


def push_image(connection, local_reference, repository, tag, auth=None, ctx=None):
    """Tag a local image as `repository:tag` and push it (for images built for the lab)."""
    with docker_errors(f"the Docker engine at {connection.description}"):
        connection.api.tag(local_reference, repository, tag)
        for event in connection.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise _pull_error(f"{repository}:{tag}", event["error"], auth)
    if ctx is not None:
        ctx.changed(f"pushed {repository}:{tag}", task="push")
    return f"{repository}:{tag}"


class BuildFailed(ClusterApiError):
    """`docker build` stopped at a step; the message names the step and the engine's error."""


def image_present(connection, reference):
    """Whether `reference` (repository:tag) exists on the engine."""
    try:
        connection.api.inspect_image(reference)
        return True
    except docker.errors.ImageNotFound:
        return False
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, f"the Docker engine at {connection.description}") or exc from None


_STEP = re.compile(r"^Step \d+/\d+ : ")


def build_image(connection, archive, reference, dockerfile="Dockerfile", buildargs=None, target=None, nocache=False, ctx=None):
    """Build `reference` on the engine from a tar context (the low-level build API, as
    `docker compose` sends a context to a remote engine); stream its output into `ctx`.

    Raises BuildFailed naming the step that failed and the engine's error. Returns the
    image id."""
    where = f"the Docker engine at {connection.description}"
    step, image_id, pending = "", "", ""
    try:
        stream = connection.api.build(
            fileobj=io.BytesIO(archive), custom_context=True, tag=reference, dockerfile=dockerfile,
            buildargs=buildargs, target=target, nocache=nocache, rm=True, forcerm=True, decode=True,
        )
        for event in stream:
            if "error" in event or "errorDetail" in event:
                error = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown error"
                if pending.strip() and ctx is not None:
                    ctx.line(pending.rstrip(), task="build")
                at = f" at {step}" if step else ""
                raise BuildFailed(f"The build of {reference} failed{at}: {error.strip()}")
            if "aux" in event and isinstance(event["aux"], dict) and event["aux"].get("ID"):
                image_id = event["aux"]["ID"]
            text = event.get("stream") or event.get("status") or ""
            if not text:
                continue
            pending += text
            *lines, pending = pending.split("\n")
            for line in lines:
                line = line.rstrip()
                if not line:
                    continue
                if _STEP.match(line):
                    step = line
                if ctx is not None:
                    ctx.line(line, task="build")
    except DriverError:
        raise
    except docker.errors.APIError as exc:
        text = _explanation(exc)
        if "dockerfile" in text.lower() or "cannot locate" in text.lower():
            raise BuildFailed(f"The build of {reference} could not start: {text}. Check `build.dockerfile` in the compose file.") from None
        raise _translate(exc, where) from None
    except Exception as exc:  # noqa: BLE001
        raise _translate(exc, where) or exc from None
    if pending.strip() and ctx is not None:
        ctx.line(pending.rstrip(), task="build")
    if ctx is not None:
        ctx.changed(f"built {reference}", task="build")
    return image_id


def push_built(connection, repository, tag, auth=None, ctx=None):
    """Push an image built on the engine to the registry its repository names."""
    reference = f"{repository}:{tag}"
    with docker_errors(f"the Docker engine at {connection.description}"):
        for event in connection.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if "error" in event:
                raise _pull_error(reference, event["error"], auth)
    if ctx is not None:
        ctx.changed(f"pushed {reference}", task="push")
    return reference


# ---- the probe: one list call per kind of object -----------------------------------------

_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")


def container_health(status_text):
    """'healthy', 'unhealthy', 'starting' or '' from the list API's Status ("Up 3 s (healthy)")."""
    found = _HEALTH.search(status_text or "")
    if not found:
        return ""
    return "starting" if found.group(1) == "health: starting" else found.group(1)


def container_row(item):
    """A compact, JSON-able row for one container from the list API."""
    ports = sorted(
        f"{p['IP']}:{p['PublicPort']}->{p['PrivatePort']}/{p['Type']}" if p.get("PublicPort") else f"{p['PrivatePort']}/{p['Type']}"
        for p in item.get("Ports") or []
    )
    labels = item.get("Labels") or {}
    return {
        "id": item["Id"][:12],
        "name": (item.get("Names") or ["?"])[0].lstrip("/"),
        "image": item.get("Image", ""),
        "state": item.get("State", ""),
        "status": item.get("Status", ""),
        "health": container_health(item.get("Status", "")),
        "ports": sorted(set(ports)),
        "created": item.get("Created"),
        "service": labels.get("filrouge.service", ""),
        "project": labels.get("filrouge.project", ""),
        "release": labels.get("filrouge.release", ""),
        # The panel's own containers (a service it deployed, a lab environment): the ones
        # whose pages carry charts, so the ones the probe takes stats for.
        "panel": bool(labels.get("filrouge.project") or labels.get("filrouge.managed") or labels.get("filrouge.env")),
    }


DISK_USAGE_MAX_AGE = 300  # seconds: `df` walks every layer and container, so it is refreshed less often


def observe_engine(connection, swarm=False, previous=None, disk_max_age=DISK_USAGE_MAX_AGE):
    """Observed state of an engine: one list call per kind of object, never one per container.

    The list calls run side by side, so the probe takes as long as the slowest of them.
    Disk usage (`df`, the costly one) is taken again only when `previous` has none younger
    than `disk_max_age` seconds; each figure keeps its own time. Returns (observed, calls):
    `calls` names the API requests made, so the probe's cost can be checked against the
    number of containers.
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    api = connection.api
    where = f"the Docker engine at {connection.description}"

    def call(function):
        with docker_errors(where):
            return function()

    def disk_usage():
        # The engine runs one `df` at a time and refuses a second one: keep the last figures then.
        try:
            return api.df()
        except docker.errors.APIError as exc:
            if "already running" in _explanation(exc):
                return None
            raise

    wanted = {"version": api.version, "containers": lambda: api.containers(all=True), "images": api.images, "volumes": api.volumes, "networks": api.networks}
    last_disk = (previous or {}).get("disk") or {}
    if not last_disk.get("at") or time.time() - last_disk["at"] > disk_max_age:
        wanted["df"] = disk_usage
    if swarm:
        wanted.update(nodes=api.nodes, services=api.services, tasks=api.tasks)

    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = {name: pool.submit(call, function) for name, function in wanted.items()}
        results = {name: future.result() for name, future in futures.items()}
    calls = list(wanted)
    version = results["version"]
    volumes = (results["volumes"] or {}).get("Volumes") or []
    observed = {
        "engine": {"version": version.get("Version", ""), "api_version": version.get("ApiVersion", ""), "os": version.get("Os", ""), "arch": version.get("Arch", "")},
        "containers": [container_row(item) for item in results["containers"]],
        "images": [
            {"id": item["Id"].split(":")[-1][:12], "tags": item.get("RepoTags") or [], "size": item.get("Size", 0), "created": item.get("Created")}
            for item in results["images"]
        ],
        "volumes": [{"name": item["Name"], "driver": item.get("Driver", ""), "labels": item.get("Labels") or {}} for item in volumes],
        "networks": [{"id": item["Id"][:12], "name": item["Name"], "driver": item.get("Driver", ""), "scope": item.get("Scope", "")} for item in results["networks"]],
        "disk": {**_disk_usage(results["df"]), "at": time.time()} if results.get("df") is not None else last_disk,
    }
    counts = {"running": 0, "exited": 0, "unhealthy": 0}
    for row in observed["containers"]:
        if row["state"] == "running":
            counts["running"] += 1
        elif row["state"] in ("exited", "dead"):
            counts["exited"] += 1
        if row["health"] == "unhealthy":
            counts["unhealthy"] += 1
    observed["container_counts"] = counts
    if swarm:
        observed.update(_swarm_state(results["nodes"], results["services"], results["tasks"]))
    return observed, calls


def _disk_usage(usage):
    def total(items, key="Size"):
        return sum(item.get(key) or 0 for item in items or [])

    return {
        "images_bytes": usage.get("LayersSize") or 0,
        "containers_bytes": total(usage.get("Containers"), "SizeRw"),
        "volumes_bytes": sum((item.get("UsageData") or {}).get("Size", 0) or 0 for item in usage.get("Volumes") or []) if usage.get("Volumes") else 0,
        "build_cache_bytes": total(usage.get("BuildCache")),
    }


def _swarm_state(nodes, services, tasks):
    running_by_node, running_by_service, desired_by_node = {}, {}, {}
    for task in tasks:
        state = (task.get("Status") or {}).get("State", "")
        node = task.get("NodeID", "")
        if task.get("DesiredState") == "running":
            desired_by_node[node] = desired_by_node.get(node, 0) + 1
        if state == "running":
            running_by_node[node] = running_by_node.get(node, 0) + 1
            running_by_service[task.get("ServiceID")] = running_by_service.get(task.get("ServiceID"), 0) + 1
    node_rows = []
    for node in nodes:
        spec, status, description = node.get("Spec") or {}, node.get("Status") or {}, node.get("Description") or {}
        node_rows.append({
            "id": node["ID"],
            "hostname": description.get("Hostname", ""),
            "role": spec.get("Role", ""),
            "availability": spec.get("Availability", ""),
            "status": status.get("State", ""),
            "address": status.get("Addr", ""),
            "leader": bool((node.get("ManagerStatus") or {}).get("Leader")),
            "engine": (description.get("Engine") or {}).get("EngineVersion", ""),
            "tasks_running": running_by_node.get(node["ID"], 0),
        })
    service_rows = []
    for service in services:
        spec = service.get("Spec") or {}
        mode = spec.get("Mode") or {}
        service_rows.append({
            "id": service["ID"][:12],
            "name": spec.get("Name", ""),
            "image": ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", "").split("@")[0],
            "replicas": (mode.get("Replicated") or {}).get("Replicas") if "Replicated" in mode else "global",
            "running": running_by_service.get(service["ID"], 0),
            "update": (service.get("UpdateStatus") or {}).get("State", ""),
            "labels": spec.get("Labels") or {},
        })
    names = {service["ID"]: (service.get("Spec") or {}).get("Name", "") for service in services}
    hostnames = {row["id"]: row["hostname"] for row in node_rows}
    task_rows = []
    for task in tasks:
        status = task.get("Status") or {}
        if task.get("DesiredState") != "running" and status.get("State") != "running":
            continue
        container = (task.get("Spec") or {}).get("ContainerSpec") or {}
        task_rows.append({
            "service_id": task.get("ServiceID", "")[:12],
            "name": f"{names.get(task.get('ServiceID'), '?')}.{task.get('Slot', '')}",
            "state": status.get("State", ""),
            "desired": task.get("DesiredState", ""),
            "node": hostnames.get(task.get("NodeID"), task.get("NodeID", "")[:12]),
            "image": container.get("Image", "").split("@")[0],
            "release": (container.get("Labels") or {}).get("filrouge.release", ""),
            "error": status.get("Err", ""),
        })
    return {"nodes": node_rows, "services": service_rows, "tasks": task_rows}


def set_node_availability(connection, node_id, availability):
    """Drain, pause or activate a Swarm node (one inspect and one update)."""
    with docker_errors(f"the Swarm at {connection.description}"):
        node = connection.api.inspect_node(node_id)
        spec = dict(node["Spec"])
        spec["Availability"] = availability
        connection.api.update_node(node_id, node["Version"]["Index"], spec)
    return node


def node_tasks(connection, node_id):
    """Tasks placed on one node that are meant to run or still running."""
    with docker_errors(f"the Swarm at {connection.description}"):
        tasks = connection.api.tasks(filters={"node": node_id})
    return [t for t in tasks if t.get("DesiredState") == "running" or (t.get("Status") or {}).get("State") == "running"]


# ---- interactive sessions (terminals) ------------------------------------------------

# bash when the image has it, sh otherwise: the shell a person expects in a container.
SHELL_COMMAND = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"]


class DockerExecSession:
    """A shell in a running container over an exec with a TTY, attached through the engine's socket.

    The terminal session interface (see clusters.drivers.ssh.SshShellSession): `read()`
    blocks until output (b"" at the end), `write`, `resize`, `close`, `exit_status`."""

    def __init__(self, connection, exec_id, sock, what):
        self.connection = connection
        self.exec_id = exec_id
        self.sock = sock
        self.what = what
        self._closed = False

    def read(self, size=65536):
        try:
            return self.sock.recv(size)
        except OSError:
            return b""

    def write(self, data):
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise HostUnreachable(f"The shell in {self.what} is gone ({exc.strerror or exc}).") from None

    def resize(self, cols, rows):
        try:
            self.connection.api.exec_resize(self.exec_id, height=rows, width=cols)
        except Exception:  # noqa: BLE001 - a resize racing the end of the shell is harmless
            pass

    @property
    def exit_status(self):
        try:
            state = self.connection.api.exec_inspect(self.exec_id)
        except Exception:  # noqa: BLE001 - the container may be gone: the status is unknown
            return None
        return None if state.get("Running") else state.get("ExitCode")

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        finally:
            self.connection.close()


def open_exec_session(cluster, container_id, cols=80, rows=24, command=None, user=""):
    """Start `command` (bash, else sh) in a running container with a TTY of cols×rows.

    Raises NotFound when the container is gone, Conflict when it is not running."""
    connection = connect(cluster)
    what = f"container {container_id[:12]} on {cluster.name}"
    try:
        with docker_errors(what):
            container = connection.client.containers.get(container_id)
            if container.status != "running":
                raise Conflict(f"{what} is {container.status}, not running: start it before opening a shell.")
            exec_id = connection.api.exec_create(
                container.id, command or SHELL_COMMAND, stdin=True, stdout=True, stderr=True, tty=True,
                environment={"TERM": "xterm-256color"}, user=user or "",
            )["Id"]
            raw = connection.api.exec_start(exec_id, tty=True, socket=True)
        sock = getattr(raw, "_sock", raw)  # the unix or TCP socket under the SDK's wrapper
        session = DockerExecSession(connection, exec_id, sock, what)
        session.resize(cols, rows)
        return session
    except BaseException:
        connection.close()
        raise


def running_containers(cluster, filters):
    """[(id, name, labels)] of the running containers that match docker `filters`, by name."""
    with engine(cluster) as connection, docker_errors(f"the engine of {cluster.name}"):
        found = connection.api.containers(filters={**filters, "status": "running"})
    rows = [(item["Id"], (item.get("Names") or ["?"])[0].lstrip("/"), item.get("Labels") or {}) for item in found]
    return sorted(rows, key=lambda row: row[1])


# ---- container stats: the one figure the list API does not give ----------------------------


def stats_figures(raw):
    """Counters and gauges from one `stats` answer: CPU seconds used so far (a counter), memory
    in use without the page cache, network bytes received / sent so far (counters)."""
    cpu = ((raw.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    memory = raw.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    cache = detail.get("inactive_file", detail.get("total_inactive_file", detail.get("cache", 0))) or 0
    networks = (raw.get("networks") or {}).values()
    figures = {
        "cpu_seconds": cpu / 1e9 if cpu is not None else None,
        "memory_bytes": max(0, memory["usage"] - cache) if memory.get("usage") is not None else None,
        "rx_bytes": sum(n.get("rx_bytes", 0) for n in networks) if networks else None,
        "tx_bytes": sum(n.get("tx_bytes", 0) for n in networks) if networks else None,
    }
    return {key: value for key, value in figures.items() if value is not None}


def container_starts(connection, since, until):
    """{short container id: how many times it started} between two epoch times, from the
    engine's event log: one call whatever the number of containers (`inspect` would tell a
    container's RestartCount, but at one call per container). A restart by its restart
    policy, by `docker restart` or by a stop and a start each count once."""
    filters = {"type": ["container"], "event": ["start"]}
    starts = {}
    with docker_errors(f"the Docker engine at {connection.description}"):
        # Times to the nanosecond ("seconds.nanoseconds", what the engine parses), so that two
        # rounds neither overlap nor leave a gap; `until` not in the future: the engine would
        # hold the answer open until then.
        for event in connection.api.events(since=_engine_time(since), until=_engine_time(until), filters=filters, decode=True):
            container_id = (event.get("id") or (event.get("Actor") or {}).get("ID") or "")[:12]
            if container_id:
                starts[container_id] = starts.get(container_id, 0) + 1
    return starts


def _engine_time(epoch):
    seconds = int(epoch)
    return f"{seconds}.{min(int((epoch - seconds) * 1e9), 999_999_999):09d}"


def container_stats(connection, container_ids, workers=8, budget=None):
    """{container id: figures} for running containers: one one-shot `stats` call each (the
    Docker API has no call for many containers), at most `workers` at a time, in the given
    order. With `budget` (seconds), no call starts after it is spent: the containers not
    reached are left out (the caller puts them first next time). A container that stopped in
    between is left out too. Returns (stats, calls made)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    api = connection.api
    deadline = time.monotonic() + budget if budget else None
    made = []

    def one(container_id):
        if deadline is not None and time.monotonic() > deadline:
            return container_id, None
        made.append(container_id)
        with docker_errors(f"the Docker engine at {connection.description}"):
            try:
                return container_id, stats_figures(api.stats(container_id, stream=False, one_shot=True))
            except docker.errors.NotFound:
                return container_id, None
            except docker.errors.APIError as exc:
                if "is not running" in _explanation(exc):
                    return container_id, None
                raise
            except ValueError:
                # An empty answer (requests' JSONDecodeError): the container was stopping,
                # restarting or paused just then. It is sampled next round.
                return container_id, None

    if not container_ids:
        return {}, 0
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(container_ids))), thread_name_prefix="stats") as pool:
        results = dict(pool.map(one, container_ids))
    return {key: value for key, value in results.items() if value is not None}, len(made)
