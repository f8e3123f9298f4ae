"""Rolling update of 4 replicas with parallelism 1: the panel on a Docker host, the panel
on Swarm, and `docker service update` of the same kind of service on Swarm (the CLI
waits until the update converged). Same image change (v1 -> v2), same health check, no
delay between batches. A single-node Swarm is made for the run and left afterwards.

    .venv/bin/python benchmarks/bench_docker_swarm_update.py [ROUNDS]
"""

import subprocess
import sys

from docker_bench_setup import docker_client, images, median, operator, project_name, run_job, setup_django, table, timed


def make_service(cluster, project, image, user, mode_port):
    from deployments import releases
    from deployments.models import Service
    from deployments.spec import normalize_spec

    repository, tag = image.rsplit(":", 1)
    port = {"container": 8080, "host_ip": "127.0.0.1", **({"mode": "host"} if mode_port else {})}
    service = Service.objects.create(name="web", project=project, cluster=cluster, spec=normalize_spec(
        {"image": repository, "tag": tag, "replicas": 4, "ports": [port], "update": {"parallelism": 1, "delay": 0, "monitor": 5}}))
    run_job("service-deploy", {"release": releases.create_release(service, user).pk}, user, service)
    return service


def panel_update(service, tag, user):
    from deployments import releases

    service.refresh_from_db()
    service.spec = {**service.spec, "tag": tag}
    service.save()
    release = releases.create_release(service, user)
    run_job("service-deploy", {"release": release.pk}, user, service)


def cli_service(image, name):
    subprocess.run(["docker", "service", "create", "--quiet", "--name", name, "--replicas", "4", "--label", "filrouge.bench=1",
                    "--update-parallelism", "1", "--update-delay", "0s", "--update-monitor", "5s", "--update-order", "start-first",
                    "--update-failure-action", "rollback", "--publish", "mode=host,target=8080", image], check=True, capture_output=True)


def cli_update(image, name):
    subprocess.run(["docker", "service", "update", "--quiet", "--image", image, name], check=True, capture_output=True)


def main(rounds=3):
    teardown = setup_django()
    client = docker_client()
    created_swarm = (client.info().get("Swarm") or {}).get("LocalNodeState") != "active"
    if created_swarm:
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        from clusters.models import Cluster

        built = images(client)
        v1, v2 = built["1"], built["2"]
        user = operator()
        host = Cluster.objects.create(name="bench-host", kind="docker", endpoint="unix:///var/run/docker.sock")
        swarm = Cluster.objects.create(name="bench-swarm", kind="swarm", endpoint="unix:///var/run/docker.sock")
        results = {"panel, Docker host": [], "panel, Swarm": [], "docker service update": []}
        for _ in range(rounds):
            project = project_name("bu")
            service = make_service(host, project, v1, user, mode_port=False)
            results["panel, Docker host"].append(timed(lambda: panel_update(service, v2.rsplit(":", 1)[1], user))[0])
            run_job("service-remove", {}, user, service)
            project = project_name("bs")
            service = make_service(swarm, project, v1, user, mode_port=True)
            results["panel, Swarm"].append(timed(lambda: panel_update(service, v2.rsplit(":", 1)[1], user))[0])
            run_job("service-remove", {}, user, service)
            name = project_name("cli")
            cli_service(v1, name)
            try:
                results["docker service update"].append(timed(lambda: cli_update(v2, name))[0])
            finally:
                subprocess.run(["docker", "service", "rm", name], capture_output=True)
        reference = median(results["docker service update"])
        table(f"Rolling update v1 -> v2 of 4 replicas, parallelism 1 (median of {rounds} rounds, same run)", ["how", "seconds", "vs docker service update"],
              [[how, f"{median(values):.2f}", f"{median(values) / reference:.2f}"] for how, values in results.items()])
    finally:
        if created_swarm:
            client.swarm.leave(force=True)
        teardown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
