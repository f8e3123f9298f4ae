"""Deploying services as plain containers on one Docker engine.

How a release runs here:
- one container per replica, named `<project>-<service>-r<revision>-<n>` and labelled
  (see deployments/naming.py), on the project's bridge network `filrouge-<project>`,
  where other services of the project reach it by its service name;
- a rolling update starts `update.parallelism` new containers, waits until each is
  healthy (its Docker health check, or, without one, still running after a short
  settling time), then removes as many old ones, and so on (`update.order` start-first);
- a failed batch (unhealthy, exited at once, never healthy within `update.monitor` s)
  with failure_action=rollback removes the new containers and brings the previous
  release back to its replica count; the job ends failed with the reason.

Published ports: a host port can be bound by one container only, so
- with `published` left empty each replica gets its own host port, chosen by Docker on
  `host_ip`, shown on the service page (put any load balancer in front of those);
- with a fixed `published` port, more than one replica is refused before anything
  changes (deploy to a Swarm cluster, whose routing mesh spreads one port over
  replicas), and an update of the single replica is stop-first: the old container
  stops, then the new one binds the port (a short gap; on failure the old comes back).

Secrets and config files are copied into each container before it starts (put_archive),
so they never appear in the container's configuration; secrets used as environment
variables are, by nature, visible to whoever can inspect the container on the engine.
"""

import io
import tarfile
import threading
import time

import docker

from clusters.drivers import docker as driver
from clusters.drivers.base import Conflict, DriverError, NotFound

from .. import builds, naming
from .base import Backend, Observation

SETTLE_SECONDS = 1.0  # a container without a health check counts as ready once it has run this long
POLL_INTERVAL = 0.25


class ReplicaFailed(DriverError):
    """A new container did not become healthy."""


class DockerBackend(Backend):
    kind = "docker"

    def open(self):
        self.connection = driver.connect(self.cluster, ctx=self.ctx)
        self.api = self.connection.api
        self.where = f"the Docker engine at {self.connection.description}"

    def close(self):
        self.connection.close()

    # ---- listing ---------------------------------------------------------------------

    def containers(self, service, revision=None, all=True):
        labels = naming.service_labels(service)
        if revision is not None:
            labels[naming.RELEASE] = str(revision)
        with driver.docker_errors(self.where):
            return self.api.containers(all=all, filters=naming.label_filter(labels))

    def observe(self, service):
        rows = [driver.container_row(item) for item in self.containers(service)]
        return observation_from_rows(service, rows)

    # ---- deploy ----------------------------------------------------------------------

    def deploy(self, release, previous=None):
        service, spec = release.service, release.spec
        self._refuse_port_clash(spec)
        auth = driver.registry_auth(service.registry_credential, self.ctx)
        with driver.docker_errors(self.where):
            if spec.get("build"):
                builds.ensure_built(self.connection, service, spec, self.ctx, auth=auth)
            else:
                driver.ensure_image(self.connection, spec["image"], spec.get("tag", "latest"), auth=auth, ctx=self.ctx)
        self.ctx.ok(f"image {spec['image']}:{spec['tag']} is on the engine", task="image")
        self._ensure_network(service.project)
        self._ensure_volumes(service, spec)
        # Leftovers of this same revision (an interrupted earlier attempt) go first.
        for item in self.containers(service, revision=release.revision):
            self._remove(item["Id"], item["Names"][0].lstrip("/"))
        old = self._sorted_old(self.containers(service), release.revision)
        target = spec["replicas"]
        update = spec.get("update") or {}
        parallelism = max(1, update.get("parallelism", 1))
        stop_first = update.get("order") == "stop-first" or self._has_fixed_port(spec)
        total = target + max(0, len(old) - target) if old else target
        self.ctx.progress(0, max(total, 1))
        self.ctx.line(
            f"rolling out revision {release.revision}: {target} replica(s), {parallelism} at a time, "
            f"{'stop-first' if stop_first else 'start-first'}, replacing {len(old)} old container(s)",
            task="rollout",
        )
        created, done = [], 0
        replica = 1
        try:
            while len(created) < target:
                batch = min(parallelism, target - len(created))
                if stop_first:
                    for item in old[:batch]:
                        self._stop_and_remove(item)
                    old = old[batch:]
                new = [self._create_and_start(service, spec, release.revision, replica + i) for i in range(batch)]
                created.extend(new)
                replica += batch
                self.changed(service)
                self._wait_ready(new, spec)
                if not stop_first:
                    for item in old[:batch]:
                        self._stop_and_remove(item)
                    old = old[batch:]
                done += batch
                self.ctx.progress(done, total)
                self.changed(service)
                if len(created) < target and update.get("delay"):
                    self.ctx.line(f"waiting {update['delay']:g} s before the next batch", task="rollout")
                    time.sleep(update["delay"])
        except ReplicaFailed as failure:
            self._after_failure(release, previous, created, failure, update)  # raises with the whole story
        for item in old:  # fewer replicas than before
            self._stop_and_remove(item)
            done += 1
            self.ctx.progress(done, total)
        self.ctx.ok(f"revision {release.revision} is running with {target} healthy replica(s)", task="rollout")

    def _after_failure(self, release, previous, created, failure, update):
        action = update.get("failure_action", "rollback")
        self.ctx.failed(str(failure), task="health")
        if action == "pause":
            raise ReplicaFailed(f"{failure} The update is paused: {len(created)} new container(s) were left as they are for inspection.")
        for container_id, name in created:
            self._remove(container_id, name)
        if previous is None:
            raise ReplicaFailed(f"{failure} Nothing was running before; the new containers were removed.")
        self.ctx.line(f"rolling back to revision {previous.revision}", task="rollback")
        self._restore(previous)
        raise ReplicaFailed(f"{failure} Rolled back to revision {previous.revision}, which is serving again.")

    def _restore(self, release):
        """Bring `release` back to its replica count (the slots a failed update had replaced)."""
        service, spec = release.service, release.spec
        running = self.containers(service, revision=release.revision)
        present = {int(item["Labels"].get(naming.REPLICA, 0)) for item in running if item["State"] == "running"}
        for item in running:
            if item["State"] != "running":
                self._remove(item["Id"], item["Names"][0].lstrip("/"))
        missing = [slot for slot in range(1, spec["replicas"] + 1) if slot not in present]
        restored = [self._create_and_start(service, spec, release.revision, slot) for slot in missing]
        self._wait_ready(restored, spec)
        self.ctx.ok(f"revision {release.revision} restored ({spec['replicas']} replica(s))", task="rollback")

    # ---- scale, restart, stop, remove ---------------------------------------------------

    def scale(self, service, replicas):
        release = service.current_release
        if release is None:
            raise DriverError(f"{service} has never been deployed; deploy it before scaling.")
        spec = dict(release.spec, replicas=replicas)
        self._refuse_port_clash(spec)
        all_of_release = self.containers(service, revision=release.revision)
        for item in all_of_release:  # stopped or exited replicas are replaced, not counted
            if item["State"] != "running":
                self._remove(item["Id"], _name(item))
        current = [item for item in all_of_release if item["State"] == "running"]
        slots = {int(item["Labels"].get(naming.REPLICA, 0)): item for item in current}
        self.ctx.line(f"scaling {service} from {len(current)} to {replicas} replica(s)", task="scale")
        self.ctx.progress(0, max(1, abs(replicas - len(current))))
        if replicas > len(current):
            missing = [slot for slot in range(1, replicas + len(current) + 1) if slot not in slots][: replicas - len(current)]
            new = [self._create_and_start(service, release.spec, release.revision, slot) for slot in missing]
            self._wait_ready(new, release.spec, on_failure_remove=True)
        else:
            for slot in sorted(slots, reverse=True)[: len(current) - replicas]:
                self._stop_and_remove(slots[slot])
        self.ctx.ok(f"{service} runs {replicas} replica(s)", task="scale")

    def restart(self, service):
        spec = service.current_release.spec if service.current_release else service.spec
        items = [item for item in self.containers(service)]
        parallelism = max(1, (spec.get("update") or {}).get("parallelism", 1))
        self.ctx.progress(0, max(1, len(items)))
        for start in range(0, len(items), parallelism):
            batch = items[start:start + parallelism]
            with driver.docker_errors(self.where):
                for item in batch:
                    self.api.restart(item["Id"], timeout=10)
                    self.ctx.changed("restarted", host=_name(item), task="restart")
            self._wait_ready([(item["Id"], _name(item)) for item in batch], spec)
            self.ctx.progress(start + len(batch))

    def stop(self, service):
        with driver.docker_errors(self.where):
            for item in self.containers(service, all=False):
                self.api.stop(item["Id"], timeout=10)
                self.ctx.changed("stopped", host=_name(item), task="stop")

    def remove(self, service):
        labels = naming.service_labels(service)
        with driver.docker_errors(self.where):
            for item in self.containers(service):
                self._remove(item["Id"], _name(item))
            for volume in (self.api.volumes(filters=naming.label_filter(labels)) or {}).get("Volumes") or []:
                self.api.remove_volume(volume["Name"], force=True)
                self.ctx.changed("volume removed", host=volume["Name"], task="remove")
        self._remove_network_if_unused(service.project)

    # ---- logs and stats ---------------------------------------------------------------

    def logs(self, service, tail=100, follow_seconds=0):
        items = self.containers(service)
        if not items:
            self.ctx.line(f"{service} has no container on {self.where}", task="logs")
            return 0
        count = 0
        with driver.docker_errors(self.where):
            for item in items:
                text = self.api.logs(item["Id"], tail=tail, timestamps=True).decode(errors="replace")
                for line in text.splitlines():
                    self.ctx.line(line, host=_name(item), task="log")
                    count += 1
        if follow_seconds:
            count += self._follow(items, follow_seconds)
        return count

    def _follow(self, items, seconds):
        """Follow every container at once (one stream each) until the time is up or the job is cancelled."""
        since = int(time.time())
        counter = {"lines": 0}
        streams = []

        def pump(item, stream):
            try:
                for chunk in stream:
                    for line in chunk.decode(errors="replace").splitlines():
                        self.ctx.line(line, host=_name(item), task="log")
                        counter["lines"] += 1
            except Exception:  # noqa: BLE001 - the stream is closed under us when following ends
                return

        for item in items:
            stream = self.api.logs(item["Id"], stream=True, follow=True, since=since, timestamps=True)
            streams.append(stream)
            threading.Thread(target=pump, args=(item, stream), daemon=True).start()
        self.ctx.line(f"following {len(items)} container(s) for {seconds:g} s", task="logs")
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.ctx.check_cancelled()
                time.sleep(0.2)
        finally:
            for stream in streams:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass
        return counter["lines"]

    def stats(self, service):
        rows = []
        with driver.docker_errors(self.where):
            for item in self.containers(service, all=False):
                sample = self.api.stats(item["Id"], stream=False)
                rows.append(stats_row(_name(item), sample))
        return rows

    # ---- containers ---------------------------------------------------------------------

    def _create_and_start(self, service, spec, revision, replica):
        name = naming.container_name(service, revision, replica)
        secrets = service.get_secrets()
        for value in secrets.values():
            self.ctx.add_secret(value)
        with driver.docker_errors(self.where):
            config = self._container_config(service, spec, revision, replica, secrets)
            created = self.api.create_container(name=name, **config)
            container_id = created["Id"]
            files = _files_for(spec, secrets)
            if files:
                self.api.put_archive(container_id, "/", _tar(files))
            try:
                self.api.start(container_id)
            except docker.errors.APIError as exc:
                self.api.remove_container(container_id, force=True, v=True)
                if driver._PORT_TAKEN.search(driver._explanation(exc)):
                    raise Conflict(
                        f"{name} cannot start: a published host port is already taken on {self.where} "
                        f"({driver._explanation(exc)}). Free that port or choose another one."
                    ) from None
                raise
        self.ctx.changed(f"started ({spec['image']}:{spec['tag']})", host=name, task="start")
        return (container_id, name)

    def _container_config(self, service, spec, revision, replica, secrets):
        env = dict(spec.get("env") or {})
        for use in spec.get("secrets") or []:
            if use.get("env"):
                if use["name"] not in secrets:
                    raise NotFound(f"Secret {use['name']} is used by {service} but has no value. Set it on the service.")
                env[use["env"]] = secrets[use["name"]]
        ports = spec.get("ports") or []
        bindings = {}
        for port in ports:
            key = f"{port['container']}/{port.get('protocol', 'tcp')}"
            host_ip = port.get("host_ip") or "0.0.0.0"
            bindings[key] = (host_ip, port["published"]) if port.get("published") else (host_ip,)
        mounts = []
        for volume in spec.get("volumes") or []:
            if naming.is_named_volume(volume["source"]):
                source, kind = naming.volume_name(service.project, volume["source"]), "volume"
            else:
                source, kind = volume["source"], "bind"
            mounts.append(docker.types.Mount(volume["target"], source, type=kind, read_only=volume.get("read_only", False)))
        resources = spec.get("resources") or {}
        host_config = self.api.create_host_config(
            port_bindings=bindings or None,
            mounts=mounts or None,
            restart_policy=_restart_policy(spec.get("restart_policy")),
            nano_cpus=int(resources["cpu"] * 1e9) if resources.get("cpu") else None,
            mem_limit=f"{resources['memory_mib']}m" if resources.get("memory_mib") else None,
            mem_reservation=f"{resources['memory_request_mib']}m" if resources.get("memory_request_mib") else None,
        )
        network = naming.network_name(service.project)
        networking = self.api.create_networking_config({network: self.api.create_endpoint_config(aliases=[service.name])})
        labels = {**(spec.get("labels") or {}), **naming.release_labels(service, revision), naming.REPLICA: str(replica)}
        config = {
            "image": f"{spec['image']}:{spec['tag']}",
            "command": spec.get("command") or None,
            "environment": env,
            "labels": labels,
            "ports": [(p["container"], p.get("protocol", "tcp")) for p in ports] or None,
            "host_config": host_config,
            "networking_config": networking,
            "hostname": f"{service.name}-{replica}",
        }
        healthcheck = docker_healthcheck(spec.get("health_check") or {})
        if healthcheck is not None:
            config["healthcheck"] = healthcheck
        return config

    def _wait_ready(self, containers, spec, on_failure_remove=False):
        """Wait until every container is healthy; raise ReplicaFailed with the reason otherwise."""
        if not containers:
            return
        update = spec.get("update") or {}
        health = spec.get("health_check") or {}
        limit = max(float(update.get("monitor", 30) or 30), 5.0) + float(health.get("start_period") or 0)
        deadline = time.monotonic() + limit
        pending = dict(containers)
        while pending:
            for container_id, name in list(pending.items()):
                with driver.docker_errors(self.where):
                    info = self.api.inspect_container(container_id)
                problem = self._problem(info, name)
                if problem:
                    if on_failure_remove:
                        for other_id, other_name in containers:
                            self._remove(other_id, other_name)
                    raise ReplicaFailed(problem)
                if _is_ready(info):
                    self.ctx.ok("healthy" if (info["State"].get("Health") or {}).get("Status") else "running", host=name, task="health")
                    del pending[container_id]
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(pending.values())
                if on_failure_remove:
                    for other_id, other_name in containers:
                        self._remove(other_id, other_name)
                raise ReplicaFailed(f"{names} did not become healthy within {limit:g} s (its health check never passed).")
            self.ctx.check_cancelled()
            time.sleep(POLL_INTERVAL)

    def _problem(self, info, name):
        state = info["State"]
        if state.get("Status") in ("exited", "dead") or state.get("Restarting") or (state.get("RestartCount") or info.get("RestartCount")):
            exit_code = state.get("ExitCode")
            tail = self._last_log_lines(info["Id"])
            detail = f" Its last output: {tail}" if tail else ""
            return f"{name} exited at once (exit code {exit_code}).{detail} Check the image's command and its configuration."
        health = state.get("Health") or {}
        if health.get("Status") == "unhealthy":
            log = (health.get("Log") or [{}])[-1]
            output = (log.get("Output") or "").strip().splitlines()
            reason = output[-1] if output else f"exit code {log.get('ExitCode')}"
            return f"{name} is unhealthy: its health check failed ({reason[:200]})."
        return ""

    def _last_log_lines(self, container_id, count=3):
        try:
            text = self.api.logs(container_id, tail=count).decode(errors="replace").strip()
        except docker.errors.APIError:
            return ""
        return " | ".join(text.splitlines()[-count:])[:400]

    def _stop_and_remove(self, item):
        self._remove(item["Id"], _name(item))

    def _remove(self, container_id, name):
        try:
            self.api.remove_container(container_id, force=True, v=True)
            self.ctx.changed("removed", host=name, task="remove")
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise driver._translate(exc, self.where) from None

    @staticmethod
    def _sorted_old(items, revision):
        """Containers of other revisions, the unhealthy and stopped ones first (they are replaced first)."""
        old = [item for item in items if item["Labels"].get(naming.RELEASE) != str(revision)]

        def rank(item):
            health = driver.container_health(item.get("Status", ""))
            return (item["State"] == "running" and health != "unhealthy", item.get("Created", 0))

        return sorted(old, key=rank)

    # ---- ports, networks, volumes ---------------------------------------------------------

    @staticmethod
    def _has_fixed_port(spec):
        return any(port.get("published") for port in spec.get("ports") or [])

    def _refuse_port_clash(self, spec):
        if spec["replicas"] > 1 and self._has_fixed_port(spec):
            fixed = ", ".join(str(p["published"]) for p in spec["ports"] if p.get("published"))
            raise Conflict(
                f"{spec['replicas']} replicas cannot share host port {fixed} on one Docker host. Leave the published "
                "port empty to give each replica its own port, use 1 replica, or deploy to a Swarm cluster, whose "
                "routing mesh spreads one port over every replica."
            )

    def _ensure_network(self, project):
        name = naming.network_name(project)
        with driver.docker_errors(self.where):
            if not self.api.networks(names=[name]):
                self.api.create_network(name, driver="bridge", labels=naming.project_labels(project), check_duplicate=True)
                self.ctx.changed("network created", host=name, task="network")

    def _remove_network_if_unused(self, project):
        name = naming.network_name(project)
        with driver.docker_errors(self.where):
            for network in self.api.networks(names=[name]):
                if network["Name"] != name:
                    continue
                if self.api.containers(all=True, filters={"network": network["Id"]}):
                    self.ctx.line(f"network {name} is still used by other services of the project", task="network")
                    continue
                self.api.remove_network(network["Id"])
                self.ctx.changed("network removed", host=name, task="network")

    def _ensure_volumes(self, service, spec):
        with driver.docker_errors(self.where):
            for volume in spec.get("volumes") or []:
                if not naming.is_named_volume(volume["source"]):
                    continue
                name = naming.volume_name(service.project, volume["source"])
                try:
                    self.api.inspect_volume(name)
                except docker.errors.NotFound:
                    self.api.create_volume(name, labels=naming.service_labels(service))
                    self.ctx.changed("volume created", host=name, task="volume")


# ---- helpers shared with the Swarm backend and the probe ------------------------------------

def docker_healthcheck(health):
    """The Engine API Healthcheck for a spec's health_check, or None to keep the image's own."""
    kind = health.get("type", "none")
    if kind == "none":
        return None
    if kind == "http":
        url = f"http://127.0.0.1:{health.get('port') or 80}{health.get('path') or '/'}"
        # wget (busybox, alpine) or curl (debian-based images): whichever the image has; their
        # error line ("server returned error: HTTP/1.1 404") becomes the failure's reason.
        test = ["CMD-SHELL", f"if command -v wget >/dev/null 2>&1; then wget -O /dev/null '{url}'; else curl -fsS -o /dev/null '{url}'; fi"]
    else:
        command = health.get("command") or []
        test = ["CMD-SHELL", command[0]] if len(command) == 1 else ["CMD", *command]
    seconds = 1_000_000_000
    return {
        "test": test,
        "interval": int(float(health.get("interval", 5)) * seconds),
        "timeout": int(float(health.get("timeout", 3)) * seconds),
        "retries": int(health.get("retries", 3)),
        "start_period": int(float(health.get("start_period", 0)) * seconds),
    }


def _restart_policy(policy):
    if policy in (None, "", "no"):
        return {"Name": "no"}
    return {"Name": policy, "MaximumRetryCount": 0} if policy != "on-failure" else {"Name": "on-failure", "MaximumRetryCount": 3}


def _is_ready(info):
    state = info["State"]
    if state.get("Status") != "running":
        return False
    health = state.get("Health")
    if health:
        return health.get("Status") == "healthy"
    started = state.get("StartedAt", "")
    return _age_seconds(started) >= SETTLE_SECONDS


def _age_seconds(timestamp):
    from datetime import datetime, timezone

    try:
        started = datetime.fromisoformat(timestamp[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return 0
    return (datetime.now(timezone.utc) - started).total_seconds()


def _files_for(spec, secrets):
    files = [(item["path"], item["content"].encode(), int(item.get("mode", "0644"), 8)) for item in spec.get("config_files") or []]
    for use in spec.get("secrets") or []:
        if use.get("path"):
            if use["name"] not in secrets:
                raise NotFound(f"Secret {use['name']} has no value. Set it on the service.")
            files.append((use["path"], secrets[use["name"]].encode(), 0o400))
    return files


def _tar(files):
    """A tar of the files with their parent directories, for put_archive at '/'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        directories = set()
        for path, _content, _mode in files:
            parts = path.strip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directories.add("/".join(parts[:depth]))
        for directory in sorted(directories):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path, content, mode in files:
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode, info.mtime = len(content), mode, int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _name(item):
    return (item.get("Names") or ["?"])[0].lstrip("/")


def observation_from_rows(service, rows):
    """Desired / running / healthy counts from container rows (driver.container_row)."""
    release = service.current_release
    desired = release.spec["replicas"] if release else service.spec.get("replicas", 0)
    if service.status == "stopped":
        desired = 0
    running = [row for row in rows if row["state"] == "running"]
    healthy = [row for row in running if row["health"] in ("healthy", "")]
    return Observation(
        desired=desired,
        running=len(running),
        healthy=len(healthy),
        replicas=sorted(
            ({key: row[key] for key in ("name", "state", "status", "health", "image", "release", "ports")} for row in rows),
            key=lambda row: row["name"],
        ),
    )


def stats_row(name, sample):
    """CPU %, memory and network totals from one `stats(stream=False)` sample."""
    cpu, precpu = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (precpu.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = (cpu.get("system_cpu_usage") or 0) - (precpu.get("system_cpu_usage") or 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_percent = (cpu_delta / system_delta) * cpus * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = sample.get("memory_stats") or {}
    cache = (memory.get("stats") or {}).get("inactive_file", 0)
    networks = sample.get("networks") or {}
    return {
        "name": name,
        "cpu_percent": round(cpu_percent, 2),
        "memory_bytes": max(0, (memory.get("usage") or 0) - cache),
        "memory_limit_bytes": memory.get("limit") or 0,
        "rx_bytes": sum(n.get("rx_bytes", 0) for n in networks.values()),
        "tx_bytes": sum(n.get("tx_bytes", 0) for n in networks.values()),
        "pids": (sample.get("pids_stats") or {}).get("current", 0),
    }
