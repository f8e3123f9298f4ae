"""The compose guard: what a student may ask the panel to run, refused with the service, key and line."""

import pytest

from deployments.compose import ComposeError
from labs.compose.guard import ComposeRefused, guard_compose, quota_memory_mib

PORTS = {"web": 20080, "api": 20081}
QUOTA = {"cpu": 1.0, "memory": "512Mi"}


def refused(text, **kwargs):
    with pytest.raises(ComposeRefused) as caught:
        guard_compose(text, kwargs.pop("ports", PORTS), kwargs.pop("quota", QUOTA), **kwargs)
    return caught.value.problems


def test_it_accepts_a_two_tier_file_with_port_variables_and_shares_the_quota():
    plan = guard_compose(
        """
services:
  web:
    image: filrouge-lab/busybox:1
    ports: ["${PORT_WEB}:8080", "api:9090"]
    depends_on: [db]
    deploy: {resources: {limits: {memory: 128M, cpus: "0.25"}}}
  db:
    image: filrouge-lab/busybox:1
    volumes: ["db_data:/data"]
    labels: {filrouge.env: "999", team: blue}
volumes:
  db_data: {}
""",
        PORTS, QUOTA,
    )
    web, db = plan.services
    assert [p["published"] for p in web.ports] == [20080, 20081]
    assert [p["name"] for p in web.ports] == ["web", "api"]
    assert (web.memory_mib, web.cpu) == (128, 0.25)
    assert (db.memory_mib, db.cpu) == (384, 0.75), "what the limits leave goes to the services without limits"
    assert db.volumes == [{"name": "db_data", "target": "/data", "read_only": False}]
    assert db.labels == {"team": "blue"}, "a student cannot write the panel's own labels"
    assert [s.name for s in plan.ordered_services()] == ["db", "web"]


@pytest.mark.parametrize(
    "body, expected",
    [
        ("    privileged: true\n", "compose.yaml, line 4: services.app.privileged: privileged containers are not allowed"),
        ("    cap_add: [SYS_ADMIN]\n", "line 4: services.app.cap_add: adding Linux capabilities"),
        ("    devices: [/dev/kmsg]\n", "line 4: services.app.devices: host devices"),
        ("    network_mode: host\n", "line 4: services.app.network_mode: network_mode: host is refused"),
        ("    pid: host\n", "line 4: services.app.pid: pid: host is refused"),
        ("    ipc: host\n", "line 4: services.app.ipc: ipc: host is refused"),
        ("    userns_mode: host\n", "line 4: services.app.userns_mode: userns_mode: host is refused"),
        ("    security_opt: [seccomp:unconfined]\n", "line 4: services.app.security_opt: seccomp:unconfined is refused"),
        ("    volumes: [/:/host]\n", "line 4: services.app.volumes[0]: / is a host path: host bind mounts are refused"),
        ("    volumes: [./src:/src]\n", "./src is a host path"),
        ("    volumes: [\"~/x:/x\"]\n", "~/x is a host path"),
        ("    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n", "mounting the Docker socket is refused"),
        ("    volumes:\n      - {type: bind, source: /etc, target: /etc}\n", "line 5: services.app.volumes[0]: bind mounts are refused"),
        ("    ports: [\"8080:80\"]\n", "host port 8080 is not allocated to you; use one of: api=20081 (${PORT_API}), web=20080 (${PORT_WEB})"),
        ("    ports: [\"80\"]\n", "80 publishes no host port"),
        ("    image: registry.example.test/app:1\n", "line 3: services.app.image: registry registry.example.test is not allowed"),
        ("    build: .\n", "images cannot be built by the lab"),
        ("    restart: always\n    shm_size: 1g\n", "line 5: services.app.shm_size: not supported in the lab"),
    ],
)
def test_it_refuses_what_would_escape_the_environment_naming_service_key_and_line(body, expected):
    image = "" if "image:" in body else "    image: filrouge-lab/busybox:1\n"
    text = "services:\n  app:\n" + image + body
    problems = refused(text)
    assert any(expected in problem for problem in problems), problems


def test_it_lists_every_problem_at_once():
    problems = refused(
        "services:\n  app:\n    image: x:1\n    privileged: true\n    network_mode: host\n    volumes: [/var/run/docker.sock:/s]\n"
    )
    assert len(problems) == 3
    assert [problem.split(": ")[0] for problem in problems] == ["compose.yaml, line 4", "compose.yaml, line 5", "compose.yaml, line 6"]


def test_it_refuses_volume_drivers_that_could_mount_the_host():
    problems = refused(
        "services:\n  db:\n    image: x:1\n    volumes: [data:/d]\nvolumes:\n  data:\n    driver_opts: {type: none, o: bind, device: /etc}\n"
    )
    assert problems == ["compose.yaml, line 7: volumes.data.driver_opts: only plain named volumes are allowed (no driver_opts)"]


def test_it_refuses_limits_above_the_quota():
    problems = refused("services:\n  a:\n    image: x:1\n    deploy: {resources: {limits: {memory: 1G}}}\n")
    assert "the services ask for 1024 MiB of memory in total; the quota is 512 MiB" in problems[0]


def test_it_names_the_line_and_column_of_broken_yaml():
    with pytest.raises(ComposeError) as caught:
        guard_compose("services:\n  web:\n    image: [oops\n", PORTS, QUOTA)
    assert "compose.yaml, line 4, column 1" in str(caught.value)


def test_it_reads_quota_memory_units():
    assert [quota_memory_mib(v) for v in ("512Mi", "1Gi", "256M", 268435456)] == [512, 1024, 256, 256]
