"""Deploying services as Docker Swarm services.

A Service becomes the Swarm service `<project>_<service>` (as `docker stack deploy`
names them) on the attachable overlay network `filrouge-<project>`, with Swarm's own
update config (parallelism, delay, monitor, order, failure_action) and a rollback config.
The job watches Swarm's UpdateStatus and the tasks of the new revision to report
progress; when Swarm rolls an update back (failure_action=rollback), the job ends failed
with Swarm's reason while the previous spec keeps serving.

Ports keep the routing mesh ("ingress") unless the spec asks for mode "host".
Secrets become Docker secrets named `<project>_<service>_<name>_<hash of the value>`
(secrets are immutable in Swarm, so a new value is a new secret), mounted as files at
their `path` (default /run/secrets/<name>); secrets used as environment variables are
set as such. Container stats are read on the manager the panel talks to only.
"""

import hashlib
import time

import docker

from clusters.drivers import docker as driver
from clusters.drivers.base import ClusterApiError, DriverError, NotFound

from .. import builds, naming
from .base import Backend, Observation
from .docker import docker_healthcheck, stats_row

SECOND = 1_000_000_000
POLL_INTERVAL = 0.5
RESTART_CONDITIONS = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}


class SwarmBackend(Backend):
    kind = "swarm"

    def open(self):
        self.connection = driver.connect(self.cluster, ctx=self.ctx)
        self.api = self.connection.api
        self.where = f"the Swarm at {self.connection.description}"
        with driver.docker_errors(self.where):
            info = self.api.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            self.connection.close()
            raise DriverError(
                f"{self.where} is not a Swarm manager (state: {swarm.get('LocalNodeState', 'unknown')}). "
                "Point the cluster at a manager node, or change its kind to 'Docker host'."
            )

    def close(self):
        self.connection.close()

    # ---- reading ---------------------------------------------------------------------

    def _find(self, service):
        with driver.docker_errors(self.where):
            found = self.api.services(filters={"name": naming.swarm_service_name(service)})
        exact = [item for item in found if item["Spec"]["Name"] == naming.swarm_service_name(service)]
        return exact[0] if exact else None

    def _tasks(self, service_id):
        with driver.docker_errors(self.where):
            return self.api.tasks(filters={"service": service_id})

    def observe(self, service):
        current = self._find(service)
        if current is None:
            return Observation(desired=0)
        return observation_from_tasks(current, self._tasks(current["ID"]))

    # ---- deploy ----------------------------------------------------------------------

    def deploy(self, release, previous=None):
        service, spec = release.service, release.spec
        auth = driver.registry_auth(service.registry_credential, self.ctx)
        if spec.get("build"):
            builds.ensure_built(self.connection, service, spec, self.ctx, swarm=True, auth=auth)
        self._ensure_network(service.project)
        secrets = self._ensure_secrets(service, spec)
        body = self._service_body(service, spec, release.revision, secrets)
        headers = {"X-Registry-Auth": docker.auth.encode_header(auth)} if auth else {}
        current = self._find(service)
        self.ctx.progress(0, max(1, spec["replicas"]))
        with driver.docker_errors(self.where):
            if current is None:
                response = self.api._post_json(self.api._url("/services/create"), data=body, headers=headers)
                self.api._raise_for_status(response)
                service_id = response.json()["ID"]
                self.ctx.changed(f"service {body['Name']} created with {spec['replicas']} replica(s)", task="swarm")
            else:
                service_id = current["ID"]
                self._update(current, body, headers)
                self.ctx.changed(f"service {body['Name']} updated to revision {release.revision}", task="swarm")
        self._watch(service_id, release, creating=current is None)
        self._remove_unused_secrets(service, keep={ref["SecretName"] for ref in secrets})

    def _update(self, current, body, headers):
        url = self.api._url("/services/{0}/update", current["ID"])
        response = self.api._post_json(url, data=body, headers=headers, params={"version": current["Version"]["Index"]})
        self.api._raise_for_status(response)
        for warning in (response.json() or {}).get("Warnings") or []:
            self.ctx.line(f"Swarm: {warning}", task="swarm")

    def _watch(self, service_id, release, creating):
        """Follow the rollout until every replica of this revision runs, or Swarm gives up."""
        spec = release.spec
        update = spec.get("update") or {}
        replicas = spec["replicas"]
        limit = 60 + replicas * (float(update.get("monitor", 30)) + float(update.get("delay", 0)) + 30)
        deadline = time.monotonic() + limit
        last_state, last_running = None, -1
        while True:
            with driver.docker_errors(self.where):
                current = self.api.inspect_service(service_id)
            status = current.get("UpdateStatus") or {}
            state = status.get("State", "")
            tasks = self._tasks(service_id)
            running = [t for t in tasks if _task_revision(t) == str(release.revision) and t["Status"]["State"] == "running" and t["DesiredState"] == "running"]
            if state != last_state and state:
                self.ctx.line(f"Swarm update state: {state}" + (f" ({status['Message']})" if status.get("Message") else ""), task="swarm")
                last_state = state
            if len(running) != last_running:
                self.changed(release.service)
                self.ctx.progress(min(len(running), replicas), max(1, replicas))
                self.ctx.line(f"{len(running)}/{replicas} replica(s) of revision {release.revision} running", task="rollout")
                last_running = len(running)
            if state in ("rollback_started", "rollback_completed", "rollback_paused", "paused"):
                reason = status.get("Message") or "an updated task failed"
                failures = _task_errors(tasks, str(release.revision))
                detail = f" Task errors: {failures}." if failures else ""
                if state.startswith("rollback"):
                    self._wait_rollback(service_id, state)
                    raise DriverError(f"Swarm rolled revision {release.revision} back: {reason}.{detail} The previous revision is serving again.")
                raise DriverError(f"Swarm paused the update of revision {release.revision}: {reason}.{detail} Fix it and deploy again.")
            converged = len(running) >= replicas and state in ("", "completed")
            if converged and len([t for t in tasks if t["DesiredState"] == "running"]) <= replicas:
                self.ctx.ok(f"revision {release.revision} is running with {replicas} replica(s)", task="rollout")
                return
            if creating and not state:
                failures = _task_errors(tasks, str(release.revision))
                if failures and len([t for t in tasks if t["Status"]["State"] in ("failed", "rejected")]) >= max(3, replicas * 2):
                    raise DriverError(f"The tasks of revision {release.revision} keep failing: {failures}.")
            if time.monotonic() > deadline:
                raise DriverError(
                    f"Revision {release.revision} did not converge within {limit:g} s ({len(running)}/{replicas} running). "
                    f"{_task_errors(tasks, str(release.revision)) or 'No task error reported.'}"
                )
            self.ctx.check_cancelled()
            time.sleep(POLL_INTERVAL)

    def _wait_rollback(self, service_id, state):
        deadline = time.monotonic() + 120
        while state == "rollback_started" and time.monotonic() < deadline:
            time.sleep(POLL_INTERVAL)
            with driver.docker_errors(self.where):
                state = (self.api.inspect_service(service_id).get("UpdateStatus") or {}).get("State", "")
        self.ctx.line(f"Swarm update state: {state}", task="swarm")

    def _service_body(self, service, spec, revision, secret_refs):
        env = dict(spec.get("env") or {})
        values = service.get_secrets()
        for value in values.values():
            self.ctx.add_secret(value)
        for use in spec.get("secrets") or []:
            if use.get("env"):
                if use["name"] not in values:
                    raise NotFound(f"Secret {use['name']} is used by {service} but has no value. Set it on the service.")
                env[use["env"]] = values[use["name"]]
        container = {
            "Image": f"{spec['image']}:{spec['tag']}",
            "Env": [f"{key}={value}" for key, value in env.items()],
            "Labels": {**(spec.get("labels") or {}), **naming.release_labels(service, revision)},
            "Mounts": [self._mount(service, volume) for volume in spec.get("volumes") or []],
            "Secrets": secret_refs,
            "Configs": [],
        }
        if spec.get("command"):
            container["Command"] = spec["command"]
        healthcheck = docker_healthcheck(spec.get("health_check") or {})
        if healthcheck is not None:
            container["HealthCheck"] = {
                "Test": healthcheck["test"], "Interval": healthcheck["interval"], "Timeout": healthcheck["timeout"],
                "Retries": healthcheck["retries"], "StartPeriod": healthcheck["start_period"],
            }
        resources = spec.get("resources") or {}
        limits, reservations = {}, {}
        if resources.get("cpu"):
            limits["NanoCPUs"] = int(resources["cpu"] * SECOND)
        if resources.get("memory_mib"):
            limits["MemoryBytes"] = resources["memory_mib"] * 1024 * 1024
        if resources.get("cpu_request"):
            reservations["NanoCPUs"] = int(resources["cpu_request"] * SECOND)
        if resources.get("memory_request_mib"):
            reservations["MemoryBytes"] = resources["memory_request_mib"] * 1024 * 1024
        update = spec.get("update") or {}
        update_config = {
            "Parallelism": update.get("parallelism", 1),
            "Delay": int(float(update.get("delay", 0)) * SECOND),
            "FailureAction": update.get("failure_action", "rollback"),
            "Monitor": int(float(update.get("monitor", 30)) * SECOND),
            "MaxFailureRatio": 0,
            "Order": update.get("order", "start-first"),
        }
        ports = [
            {
                "Protocol": port.get("protocol", "tcp"),
                "TargetPort": port["container"],
                **({"PublishedPort": port["published"]} if port.get("published") else {}),
                "PublishMode": port.get("mode", "ingress"),
            }
            for port in spec.get("ports") or []
        ]
        return {
            "Name": naming.swarm_service_name(service),
            "Labels": {**naming.service_labels(service), naming.RELEASE: str(revision)},
            "TaskTemplate": {
                "ContainerSpec": container,
                "Resources": {"Limits": limits, "Reservations": reservations},
                "RestartPolicy": {"Condition": RESTART_CONDITIONS.get(spec.get("restart_policy"), "any"), "MaxAttempts": 0},
                "Networks": [{"Target": naming.network_name(service.project), "Aliases": [service.name]}],
                "ForceUpdate": 0,
            },
            "Mode": {"Replicated": {"Replicas": spec["replicas"]}},
            "UpdateConfig": update_config,
            "RollbackConfig": {**update_config, "FailureAction": "pause"},
            "EndpointSpec": {"Mode": "vip", "Ports": ports},
        }

    def _mount(self, service, volume):
        if naming.is_named_volume(volume["source"]):
            return {
                "Type": "volume",
                "Source": naming.volume_name(service.project, volume["source"]),
                "Target": volume["target"],
                "ReadOnly": volume.get("read_only", False),
                "VolumeOptions": {"Labels": naming.service_labels(service)},
            }
        return {"Type": "bind", "Source": volume["source"], "Target": volume["target"], "ReadOnly": volume.get("read_only", False)}

    def _ensure_network(self, project):
        name = naming.network_name(project)
        with driver.docker_errors(self.where):
            existing = [n for n in self.api.networks(names=[name]) if n["Name"] == name]
            if existing and existing[0].get("Driver") != "overlay":
                raise ClusterApiError(f"Network {name} exists but is not an overlay network. Remove it, then deploy again.")
            if not existing:
                self.api.create_network(name, driver="overlay", attachable=True, labels=naming.project_labels(project), check_duplicate=True)
                self.ctx.changed("overlay network created", host=name, task="network")

    def _ensure_secrets(self, service, spec):
        refs = []
        values = service.get_secrets()
        for use in spec.get("secrets") or []:
            if not use.get("path"):
                continue
            if use["name"] not in values:
                raise NotFound(f"Secret {use['name']} is used by {service} but has no value. Set it on the service.")
            value = values[use["name"]]
            self.ctx.add_secret(value)
            digest = hashlib.sha256(value.encode()).hexdigest()[:10]
            name = f"{service.project}_{service.name}_{use['name']}_{digest}"
            with driver.docker_errors(self.where):
                found = [s for s in self.api.secrets(filters={"name": name}) if s["Spec"]["Name"] == name]
                secret_id = found[0]["ID"] if found else self.api.create_secret(name, value.encode(), labels=naming.service_labels(service))["ID"]
            if not found:
                self.ctx.changed("Docker secret created", host=name, task="secret")
            refs.append({"SecretID": secret_id, "SecretName": name, "File": {"Name": use["path"], "UID": "0", "GID": "0", "Mode": 0o400}})
        return refs

    def _remove_unused_secrets(self, service, keep):
        with driver.docker_errors(self.where):
            for secret in self.api.secrets(filters=naming.label_filter(naming.service_labels(service))):
                if secret["Spec"]["Name"] in keep:
                    continue
                try:
                    self.api.remove_secret(secret["ID"])
                except docker.errors.APIError:  # still used by a task that is going away; removed next time
                    continue

    # ---- scale, restart, stop, remove -------------------------------------------------------

    def _require(self, service):
        current = self._find(service)
        if current is None:
            raise NotFound(f"{naming.swarm_service_name(service)} does not exist on {self.where}. Deploy the service first.")
        return current

    def scale(self, service, replicas):
        current = self._require(service)
        spec = dict(current["Spec"])
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
        with driver.docker_errors(self.where):
            self._update(current, spec, {})
        self.ctx.changed(f"scaled to {replicas} replica(s)", task="scale")
        revision = current["Spec"]["TaskTemplate"]["ContainerSpec"]["Labels"].get(naming.RELEASE, "")
        self._wait_running(current["ID"], replicas, revision)

    def _wait_running(self, service_id, replicas, revision, limit=120):
        deadline = time.monotonic() + limit
        self.ctx.progress(0, max(1, replicas))
        while True:
            tasks = self._tasks(service_id)
            running = [t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running" and _task_revision(t) == revision]
            extra = [t for t in tasks if t["DesiredState"] != "running" and t["Status"]["State"] == "running"]
            self.ctx.progress(min(len(running), replicas), max(1, replicas))
            if len(running) == replicas and not extra:
                self.ctx.ok(f"{replicas} replica(s) running", task="scale")
                return
            if time.monotonic() > deadline:
                raise DriverError(f"Only {len(running)} of {replicas} replica(s) run after {limit} s. {_task_errors(tasks, revision)}")
            self.ctx.check_cancelled()
            time.sleep(POLL_INTERVAL)

    def restart(self, service):
        current = self._require(service)
        spec = dict(current["Spec"])
        spec["TaskTemplate"] = dict(spec["TaskTemplate"], ForceUpdate=(spec["TaskTemplate"].get("ForceUpdate") or 0) + 1)
        with driver.docker_errors(self.where):
            self._update(current, spec, {})
        self.ctx.changed("restart requested (force update)", task="restart")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with driver.docker_errors(self.where):
                state = (self.api.inspect_service(current["ID"]).get("UpdateStatus") or {}).get("State", "")
            if state == "completed":
                self.ctx.ok("every replica restarted", task="restart")
                return
            if state.startswith("rollback") or state == "paused":
                raise DriverError(f"Swarm stopped the restart: {state}.")
            self.ctx.check_cancelled()
            time.sleep(POLL_INTERVAL)
        raise DriverError("The restart did not complete within 300 s.")

    def stop(self, service):
        self.scale(service, 0)

    def remove(self, service):
        current = self._find(service)
        labels = naming.service_labels(service)
        with driver.docker_errors(self.where):
            if current is not None:
                self.api.remove_service(current["ID"])
                self.ctx.changed("Swarm service removed", host=current["Spec"]["Name"], task="remove")
                # Volumes and secrets can go only once the tasks' containers are gone.
                deadline = time.monotonic() + 60
                swarm_label = f"com.docker.swarm.service.id={current['ID']}"
                while self.api.containers(all=True, filters={"label": swarm_label}) and time.monotonic() < deadline:
                    time.sleep(POLL_INTERVAL)
            for secret in self.api.secrets(filters=naming.label_filter(labels)):
                self.api.remove_secret(secret["ID"])
                self.ctx.changed("Docker secret removed", host=secret["Spec"]["Name"], task="remove")
            for volume in (self.api.volumes(filters=naming.label_filter(labels)) or {}).get("Volumes") or []:
                self.api.remove_volume(volume["Name"], force=True)
                self.ctx.changed("volume removed", host=volume["Name"], task="remove")
            others = [s for s in self.api.services(filters=naming.label_filter(naming.project_labels(service.project)))]
            name = naming.network_name(service.project)
            if not others:
                for network in self.api.networks(names=[name]):
                    if network["Name"] == name:
                        self._remove_network(network["Id"], name)

    def _remove_network(self, network_id, name):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.api.remove_network(network_id)
                self.ctx.changed("network removed", host=name, task="network")
                return
            except docker.errors.APIError as exc:  # the last task's endpoint is released a moment later
                if time.monotonic() > deadline:
                    raise driver._translate(exc, self.where) from None
                time.sleep(POLL_INTERVAL)

    # ---- logs and stats ------------------------------------------------------------------

    def logs(self, service, tail=100, follow_seconds=0):
        current = self._require(service)
        count = 0
        with driver.docker_errors(self.where):
            text = self.api.service_logs(current["ID"], stdout=True, stderr=True, tail=tail, timestamps=True, details=False)
            for chunk in text:
                for line in chunk.decode(errors="replace").splitlines():
                    self.ctx.line(line, host=current["Spec"]["Name"], task="log")
                    count += 1
        if follow_seconds:
            since = int(time.time())
            deadline = time.monotonic() + follow_seconds
            while time.monotonic() < deadline:
                self.ctx.check_cancelled()
                time.sleep(1)
                now = int(time.time())
                with driver.docker_errors(self.where):
                    for chunk in self.api.service_logs(current["ID"], stdout=True, stderr=True, since=since, timestamps=True):
                        for line in chunk.decode(errors="replace").splitlines():
                            self.ctx.line(line, host=current["Spec"]["Name"], task="log")
                            count += 1
                since = now
        return count

    def stats(self, service):
        current = self._require(service)
        rows = []
        with driver.docker_errors(self.where):
            for item in self.api.containers(filters={"label": f"com.docker.swarm.service.id={current['ID']}"}):
                rows.append(stats_row(item["Names"][0].lstrip("/"), self.api.stats(item["Id"], stream=False)))
        return rows


def _task_revision(task):
    return ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels", {}).get(naming.RELEASE, "")


def _task_errors(tasks, revision):
    errors = []
    for task in sorted(tasks, key=lambda t: t.get("UpdatedAt", ""), reverse=True):
        status = task.get("Status") or {}
        if _task_revision(task) == revision and (status.get("Err") or status.get("State") in ("failed", "rejected")):
            errors.append(f"{status.get('State')}: {status.get('Err') or status.get('Message')}")
    unique = list(dict.fromkeys(errors))
    return "; ".join(unique[:3])


def observation_from_tasks(swarm_service, tasks):
    """Desired / running / healthy from a Swarm service and its tasks (Swarm runs a task only once healthy)."""
    mode = swarm_service["Spec"].get("Mode") or {}
    desired = (mode.get("Replicated") or {}).get("Replicas", 0)
    rows = []
    for task in tasks:
        status = task.get("Status") or {}
        if task.get("DesiredState") != "running" and status.get("State") not in ("running", "starting"):
            continue
        rows.append({
            "name": f"{swarm_service['Spec']['Name']}.{task.get('Slot', '')}",
            "state": status.get("State", ""),
            "status": status.get("Message", ""),
            "health": "healthy" if status.get("State") == "running" else "starting",
            "image": ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", "").split("@")[0],
            "release": _task_revision(task),
            "ports": [f"{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol')}" for p in status.get("PortStatus", {}).get("Ports") or []],
            "node": task.get("NodeID", "")[:12],
            "container": ((status.get("ContainerStatus") or {}).get("ContainerID") or "")[:12],
        })
    running = [row for row in rows if row["state"] == "running"]
    return Observation(
        desired=desired,
        running=len(running),
        healthy=len(running),
        replicas=sorted(rows, key=lambda row: row["name"]),
        extra={"update": (swarm_service.get("UpdateStatus") or {}).get("State", "")},
    )
