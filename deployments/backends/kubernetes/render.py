"""A Service's release rendered as Kubernetes objects (plain dicts, ready for server-side apply).

One release becomes, in the service's namespace (`Service.project`):
- Deployment `<name>`: the containers, env, config files and secrets as files, volumes,
  readiness and liveness probes from the health check, requests/limits from the
  resources, a RollingUpdate strategy from `update` (start-first: maxSurge=parallelism,
  maxUnavailable=0; stop-first: the reverse); no `replicas` when an HPA owns them;
- Service `<name>` (ClusterIP or NodePort) when the spec publishes ports;
- ConfigMap `<name>-config` for config files, Secret `<name>-secrets` for secret values,
  Secret `<name>-registry` (dockerconfigjson) for a registry credential;
- Ingress `<name>` (host, path, TLS secret), HorizontalPodAutoscaler `<name>`
  (autoscaling/v2: min, max, CPU target), a PersistentVolumeClaim `<name>-<volume>` per
  named volume.

Every object carries `app.kubernetes.io/managed-by: filrouge`, `filrouge.service=<id>`
and `filrouge.release=<revision>`, so "everything of this service" is one label selector
and objects a newer release no longer renders can be found and removed. The pod
template also carries a checksum of the config and secrets, so changing one of them
rolls the pods.

Pure functions: nothing here talks to a cluster.
"""

import base64
import hashlib
import json
import math
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER_NAME = "filrouge"
SERVICE_LABEL = "filrouge.service"
RELEASE_LABEL = "filrouge.release"
CHECKSUM_ANNOTATION = "filrouge.checksum/config"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

# Kinds a release may render, in apply order (what others refer to first).
KINDS = ("PersistentVolumeClaim", "ConfigMap", "Secret", "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler")


def service_selector(service):
    """The label selector of everything the panel created for this service."""
    return f"{MANAGED_BY}={MANAGER_NAME},{SERVICE_LABEL}={service.pk}"


def common_labels(service, revision):
    return {
        MANAGED_BY: MANAGER_NAME,
        "app.kubernetes.io/name": service.name,
        "app.kubernetes.io/instance": service.name,
        SERVICE_LABEL: str(service.pk),
        RELEASE_LABEL: str(revision),
    }


def pod_selector(service):
    # Immutable on a Deployment: never put the release in it.
    return {MANAGED_BY: MANAGER_NAME, SERVICE_LABEL: str(service.pk)}


def cpu_quantity(cores):
    return f"{max(1, round(cores * 1000))}m"


def memory_quantity(mib):
    return f"{int(mib)}Mi"


def config_key(path):
    """A ConfigMap/Secret key for a file path (keys allow letters, digits, '-', '_', '.')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.strip("/")) or "file"


def volume_claim_name(service, source):
    return f"{service.name}-{re.sub(r'[^a-z0-9-]', '-', source.lower()).strip('-')}"[:63].rstrip("-")


def _metadata(service, revision, name, **extra):
    return {"name": name, "namespace": service.project, "labels": common_labels(service, revision), **extra}


def _probe(health, ports):
    kind = health.get("type", "none")
    if kind == "none":
        return None
    probe = {
        "periodSeconds": max(1, math.ceil(health.get("interval", 5))),
        "timeoutSeconds": max(1, math.ceil(health.get("timeout", 3))),
        "failureThreshold": max(1, int(health.get("retries", 3))),
    }
    if health.get("start_period"):
        probe["initialDelaySeconds"] = math.ceil(health["start_period"])
    if kind == "http":
        port = health.get("port") or (ports[0]["container"] if ports else 80)
        probe["httpGet"] = {"path": health.get("path") or "/", "port": port}
    else:
        probe["exec"] = {"command": list(health.get("command") or [])}
    return probe


def _resources(resources):
    limits, requests = {}, {}
    if resources.get("cpu"):
        limits["cpu"] = cpu_quantity(resources["cpu"])
    if resources.get("memory_mib"):
        limits["memory"] = memory_quantity(resources["memory_mib"])
    if resources.get("cpu_request"):
        requests["cpu"] = cpu_quantity(resources["cpu_request"])
    if resources.get("memory_request_mib"):
        requests["memory"] = memory_quantity(resources["memory_request_mib"])
    out = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def _strategy(update):
    parallelism = max(1, int(update.get("parallelism", 1)))
    if update.get("order") == "stop-first":
        return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": parallelism}}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": parallelism, "maxUnavailable": 0}}


def registry_secret_data(image, username, password):
    """The .dockerconfigjson of a registry login for the registry of `image`."""
    first = image.split("/", 1)[0]
    host = first if ("." in first or ":" in first or first == "localhost") and "/" in image else "https://index.docker.io/v1/"
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {host: {"username": username, "password": password, "auth": auth}}})


def render(service, spec, revision, secrets=None, registry_login=None, replicas=None):
    """The list of objects (dicts) of `spec` as revision `revision` of `service`.

    `secrets`: {name: value} (decrypted by the caller, a job); `registry_login`:
    (username, password) or None; `replicas`: override the spec's count (scale, stop).
    """
    secrets = secrets or {}
    name, namespace = service.name, service.project
    labels = common_labels(service, revision)
    ports = spec.get("ports") or []
    objects = []

    config_data = {config_key(item["path"]): item["content"] for item in spec.get("config_files") or []}
    secret_uses = spec.get("secrets") or []
    secret_values = {use["name"]: secrets.get(use["name"], "") for use in secret_uses}
    missing = [use["name"] for use in secret_uses if use["name"] not in secrets]
    if missing:
        raise ValueError(f"secret values missing for: {', '.join(missing)}. Set them on the service.")

    volumes, mounts = [], []
    if config_data:
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": _metadata(service, revision, f"{name}-config"), "data": config_data})
        volumes.append({"name": "config", "configMap": {"name": f"{name}-config"}})
        for item in spec.get("config_files") or []:
            mounts.append({"name": "config", "mountPath": item["path"], "subPath": config_key(item["path"]), "readOnly": True})
    if secret_values:
        objects.append({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": _metadata(service, revision, f"{name}-secrets"),
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in secret_values.items()},
        })
        file_uses = [use for use in secret_uses if use.get("path")]
        if file_uses:
            volumes.append({"name": "secrets", "secret": {"secretName": f"{name}-secrets"}})
            for use in file_uses:
                mounts.append({"name": "secrets", "mountPath": use["path"], "subPath": use["name"], "readOnly": True})
    pull_secrets = []
    if registry_login:
        objects.append({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson", "metadata": _metadata(service, revision, f"{name}-registry"),
            "data": {".dockerconfigjson": base64.b64encode(registry_secret_data(spec["image"], *registry_login).encode()).decode()},
        })
        pull_secrets = [{"name": f"{name}-registry"}]

    for index, volume in enumerate(spec.get("volumes") or []):
        source = volume["source"]
        volume_name = f"data-{index}"
        if source.startswith("/"):
            volumes.append({"name": volume_name, "hostPath": {"path": source}})
        else:
            claim = volume_claim_name(service, source)
            objects.append({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _metadata(service, revision, claim),
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": memory_quantity(volume.get("size_mib") or 1024)}}},
            })
            volumes.append({"name": volume_name, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": volume_name, "mountPath": volume["target"], **({"readOnly": True} if volume.get("read_only") else {})})

    env = [{"name": key, "value": value} for key, value in sorted((spec.get("env") or {}).items())]
    env += [{"name": use["env"], "valueFrom": {"secretKeyRef": {"name": f"{name}-secrets", "key": use["name"]}}} for use in secret_uses if use.get("env")]

    container = {"name": name, "image": f"{spec['image']}:{spec.get('tag', 'latest')}"}
    if spec.get("command"):
        # A compose/Docker `command` replaces the image's CMD: that is `args` here.
        container["args"] = list(spec["command"])
    if ports:
        container["ports"] = [{"containerPort": port["container"], "protocol": port.get("protocol", "tcp").upper()} for port in ports]
    if env:
        container["env"] = env
    if mounts:
        container["volumeMounts"] = mounts
    resources = _resources(spec.get("resources") or {})
    if resources:
        container["resources"] = resources
    probe = _probe(spec.get("health_check") or {}, ports)
    if probe:
        container["readinessProbe"] = probe
        container["livenessProbe"] = {**probe, "failureThreshold": probe["failureThreshold"] + 2}

    checksum = hashlib.sha256(json.dumps([config_data, secret_values], sort_keys=True).encode()).hexdigest()[:16]
    pod_labels = {**pod_selector(service), "app.kubernetes.io/name": name, RELEASE_LABEL: str(revision)}
    pod_spec = {"containers": [container]}
    if volumes:
        pod_spec["volumes"] = volumes
    if pull_secrets:
        pod_spec["imagePullSecrets"] = pull_secrets
    deployment_spec = {
        "selector": {"matchLabels": pod_selector(service)},
        "strategy": _strategy(spec.get("update") or {}),
        "template": {"metadata": {"labels": pod_labels, "annotations": {CHECKSUM_ANNOTATION: checksum}}, "spec": pod_spec},
    }
    autoscaling = spec.get("autoscaling")
    if not autoscaling or replicas == 0:
        # With an HPA the replica count is its business: applying one would fight it.
        deployment_spec["replicas"] = spec.get("replicas", 1) if replicas is None else replicas
    objects.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(service, revision, name), "spec": deployment_spec})

    if ports:
        service_ports = []
        for port in ports:
            row = {"name": f"{port.get('protocol', 'tcp')}-{port['container']}", "port": port.get("published") or port["container"],
                   "targetPort": port["container"], "protocol": port.get("protocol", "tcp").upper()}
            if spec.get("service_type") == "NodePort" and port.get("published") and 30000 <= port["published"] <= 32767:
                row["nodePort"] = port["published"]
            service_ports.append(row)
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": _metadata(service, revision, name),
                        "spec": {"type": spec.get("service_type") or "ClusterIP", "selector": pod_selector(service), "ports": service_ports}})

    ingress = spec.get("ingress")
    if ingress:
        port = ingress.get("port") or (ports[0].get("published") or ports[0]["container"] if ports else 80)
        rule = {"host": ingress["host"], "http": {"paths": [{
            "path": ingress.get("path") or "/", "pathType": "Prefix",
            "backend": {"service": {"name": name, "port": {"number": port}}},
        }]}}
        ingress_spec = {"rules": [rule]}
        if ingress.get("tls_secret"):
            ingress_spec["tls"] = [{"hosts": [ingress["host"]], "secretName": ingress["tls_secret"]}]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _metadata(service, revision, name), "spec": ingress_spec})

    if autoscaling and replicas != 0:
        objects.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _metadata(service, revision, name),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": autoscaling["min_replicas"], "maxReplicas": autoscaling["max_replicas"],
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": autoscaling.get("cpu_target_percent", 70)}}}],
            },
        })
    for item in objects:
        item["metadata"]["namespace"] = namespace
        item["metadata"]["labels"] = dict(labels)
    return sorted(objects, key=lambda item: KINDS.index(item["kind"]))
