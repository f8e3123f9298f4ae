"""Panel overhead of a 3-replica deploy over the same `docker run` commands issued directly.

Both sides start 3 containers of the same image on the same network with a published
port each, and wait until all 3 are healthy (the image's health check runs every 1 s),
which is what a deploy must do. The panel deploys with update.parallelism=3 (all three
at once, like three `docker run` in a row). Goal: panel / direct <= 1.2.

    .venv/bin/python benchmarks/bench_docker_deploy.py [ROUNDS]
"""

import subprocess
import sys
import time

from docker_bench_setup import docker_client, images, median, operator, project_name, remove_labelled, run_job, setup_django, table, timed


def direct(client, image, project):
    network = f"bench-{project}"
    subprocess.run(["docker", "network", "create", "--label", f"filrouge.project={project}", network], check=True, capture_output=True)
    names = []
    for index in range(1, 4):
        name = f"{project}-direct-{index}"
        subprocess.run(["docker", "run", "-d", "--name", name, "--label", f"filrouge.project={project}", "--network", network,
                        "--network-alias", "web", "-p", "127.0.0.1::8080", image], check=True, capture_output=True)
        names.append(name)
    while True:  # wait for the 3 health checks, one `docker inspect` call for all
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Health.Status}}", *names], check=True, capture_output=True, text=True).stdout.split()
        if out == ["healthy"] * 3:
            return
        time.sleep(0.1)


def panel(cluster, image, project, user):
    from deployments import releases
    from deployments.models import Service
    from deployments.spec import normalize_spec

    repository, tag = image.rsplit(":", 1)
    service = Service.objects.create(name="web", project=project, cluster=cluster, spec=normalize_spec(
        {"image": repository, "tag": tag, "replicas": 3, "ports": [{"container": 8080, "host_ip": "127.0.0.1"}], "update": {"parallelism": 3}}))
    release = releases.create_release(service, user)
    run_job("service-deploy", {"release": release.pk}, user, service)


def main(rounds=5):
    teardown = setup_django()
    try:
        from clusters.models import Cluster

        client = docker_client()
        image = images(client)["1"]
        user = operator()
        cluster = Cluster.objects.create(name="bench", kind="docker", endpoint="unix:///var/run/docker.sock")
        direct_times, panel_times = [], []
        for _ in range(rounds):
            project = project_name("bd")
            seconds, _ = timed(lambda: direct(client, image, project))
            direct_times.append(seconds)
            remove_labelled(client, f"filrouge.project={project}")
            project = project_name("bp")
            seconds, _ = timed(lambda: panel(cluster, image, project, user))
            panel_times.append(seconds)
            remove_labelled(client, f"filrouge.project={project}")
        d, p = median(direct_times), median(panel_times)
        table(f"3-replica deploy, healthy at the end (median of {rounds} rounds, same run)", ["how", "seconds", "ratio"], [
            ["docker run x3 + wait healthy", f"{d:.2f}", "1.00"],
            ["panel deploy job (runner.execute)", f"{p:.2f}", f"{p / d:.2f}"],
        ])
    finally:
        teardown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
