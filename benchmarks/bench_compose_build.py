"""The panel's build of a two-service compose project against `docker-compose build` (v1,
installed as `docker-compose`) on the same engine, cold (no cache) and cached.

Both build the same folder: two `build:` services FROM the test http app image (built from
nothing, so no pull), each with a COPY of a 1 MiB context and a RUN step. The panel's side
is what an import then a deploy does: read the folder into context archives
(.dockerignore, deterministic tar), store them encrypted with the services, then, per
service, send the stored archive to the engine's build API and stream the output
(deployments.builds.ensure_built). "cached" forces the build (the engine's layer cache
answers every step); the last row is what a redeploy of unchanged sources costs, where
the panel finds the image by its content tag and builds nothing.

    .venv/bin/python benchmarks/bench_compose_build.py [ROUNDS]
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from docker_bench_setup import docker_client, images, median, project_name, setup_django, table, timed

COMPOSE = """\
services:
  front:
    build: ./front
    depends_on: [api]
  api:
    build:
      context: api
      args: {LABEL: api}
"""
DOCKERFILE = """\
FROM {base}
ARG LABEL=front
COPY . /www/
RUN ["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo \\"$LABEL built\\" > /www/built.txt"]
"""


class QuietContext:
    """What a job's ctx offers the build code, counting lines instead of storing them."""

    def __init__(self):
        self.lines = 0

    def line(self, text, **kwargs):
        self.lines += 1

    ok = changed = failed = line

    def add_secret(self, value):
        pass


def write_project(root, base):
    for service in ("front", "api"):
        folder = root / service
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        (folder / "index.html").write_text(f"{service}\n")
        (folder / "payload.bin").write_bytes(os.urandom(1024 * 1024))
        (folder / ".dockerignore").write_text("*.tmp\n")
    (root / "compose.yaml").write_text(COMPOSE)


def compose_build(root, project, nocache):
    command = ["docker-compose", "-p", project, "build", "-q"] + (["--no-cache"] if nocache else [])
    subprocess.run(command, cwd=root, check=True, capture_output=True, env={**os.environ, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"})


def panel_build(root, cluster, project, connection, nocache, force=True):
    from deployments import builds
    from deployments.compose import apply_plan, parse_compose

    plan = parse_compose((root / "compose.yaml").read_text(), base_dir=str(root), project=project)
    services = {service.name: service for service in apply_plan(plan, cluster)}
    ctx = QuietContext()
    for name in ("api", "front"):
        service = services[name]
        spec = service.spec
        if force and not nocache:
            # Send the context and let the engine's layer cache answer, as `compose build` does.
            archive = builds.load_context(service, spec["build"]["context"])
            from clusters.drivers import docker as driver

            driver.build_image(connection, archive, f"{spec['image']}:{spec['tag']}", dockerfile=spec["build"]["dockerfile"],
                               buildargs=spec["build"]["args"] or None, ctx=ctx)
        else:
            builds.ensure_built(connection, service, spec, ctx, nocache=nocache)
    return ctx.lines


def remove_images(client, *prefixes):
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(prefixes):
                try:
                    client.images.remove(tag, force=True)
                except Exception:  # noqa: BLE001
                    pass


def main(rounds=3):
    if not shutil.which("docker-compose"):
        print("docker-compose is not installed (apt-get install docker-compose); skipped")
        return
    teardown = setup_django()
    root = Path(tempfile.mkdtemp(prefix="bench-compose-build-"))
    compose_project, panel_project = project_name("bcc"), project_name("bcp")
    client = docker_client()
    try:
        from clusters.drivers import docker as driver
        from clusters.models import Cluster

        base = images(client)["1"]
        write_project(root, base)
        cluster = Cluster.objects.create(name="bench-build", kind="docker", endpoint="unix:///var/run/docker.sock")
        connection = driver.connect(cluster)
        results = {key: [] for key in ("compose-startup", "compose-cold", "panel-cold", "compose-cached", "panel-cached", "panel-redeploy")}
        for _ in range(rounds):
            seconds, _ = timed(lambda: subprocess.run(["docker-compose", "version"], check=True, capture_output=True))
            results["compose-startup"].append(seconds)
            seconds, _ = timed(lambda: compose_build(root, compose_project, nocache=True))
            results["compose-cold"].append(seconds)
            seconds, _ = timed(lambda: panel_build(root, cluster, panel_project, connection, nocache=True))
            results["panel-cold"].append(seconds)
            seconds, _ = timed(lambda: compose_build(root, compose_project, nocache=False))
            results["compose-cached"].append(seconds)
            seconds, _ = timed(lambda: panel_build(root, cluster, panel_project, connection, nocache=False))
            results["panel-cached"].append(seconds)
            seconds, _ = timed(lambda: panel_build(root, cluster, panel_project, connection, nocache=False, force=False))
            results["panel-redeploy"].append(seconds)
        connection.close()
        m = {key: median(values) for key, values in results.items()}
        table(f"Two-service compose build on the same engine (median of {rounds} rounds, same run; classic builder)",
              ["how", "seconds", "panel / compose"], [
                  ["docker-compose build --no-cache", f"{m['compose-cold']:.2f}", "1.00"],
                  ["panel build, nocache (archive + store + build API)", f"{m['panel-cold']:.2f}", f"{m['panel-cold'] / m['compose-cold']:.2f}"],
                  ["docker-compose build (cached)", f"{m['compose-cached']:.2f}", "1.00"],
                  ["panel build, cached (context sent, cache hits)", f"{m['panel-cached']:.2f}", f"{m['panel-cached'] / m['compose-cached']:.2f}"],
                  ["panel redeploy, same sources (image found by tag)", f"{m['panel-redeploy']:.2f}", f"{m['panel-redeploy'] / m['compose-cached']:.2f}"],
                  ["(docker-compose version: its start-up alone)", f"{m['compose-startup']:.2f}", ""],
              ])
    finally:
        remove_images(client, f"{compose_project}_", f"filrouge/{panel_project}-")
        shutil.rmtree(root, ignore_errors=True)
        teardown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
