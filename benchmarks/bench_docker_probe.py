"""Probe of an engine running many containers: wall time and number of API calls.

Starts N containers (default 500; `sleep` in the 2 MB test image, no network, labelled),
runs the panel's probe (clusters.drivers.docker.observe_engine: one list call per kind of
object) 5 times, removes them and probes again. Goal: under 1 s at 500, and
the same number of calls whatever N is.

    .venv/bin/python benchmarks/bench_docker_probe.py [N]
"""

import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from docker_bench_setup import docker_client, images, median, table, timed



def start_many(client, image, count, label):
    """Bring the containers labelled `label` up to `count` (a re-run reuses what is still there)."""
    existing = len(client.api.containers(all=True, filters={"label": f"filrouge.bench={label}"}))

    def start(index):
        container = client.api.create_container(image, command=["sleep", "3600"], name=f"{label}-{uuid.uuid4().hex[:8]}", labels={"filrouge.bench": label},
                                                host_config=client.api.create_host_config(network_mode="none"))
        client.api.start(container["Id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(start, range(max(0, count - existing))))


def remove_all(client, label):
    items = client.api.containers(all=True, filters={"label": f"filrouge.bench={label}"})
    with ThreadPoolExecutor(max_workers=12) as pool:  # the engine's teardown is slow; several at once
        list(pool.map(lambda item: client.api.remove_container(item["Id"], force=True), items))


def probe(rounds=5):
    """(median s, worst s, calls) of the periodic probe (disk usage reused) and of one taking disk usage."""
    import django

    django.setup()
    from clusters.drivers import docker as driver
    from clusters.models import Cluster

    cluster = Cluster(name="bench", kind="docker", endpoint="unix:///var/run/docker.sock")
    results = {}
    with driver.engine(cluster) as connection:
        for label, max_age in (("probe with df", -1), ("periodic probe (df reused)", 3600)):
            times, calls, seen = [], None, 0
            observed = None
            for _ in range(rounds):
                seconds, (observed_now, made) = timed(lambda: driver.observe_engine(connection, previous=observed, disk_max_age=max_age))
                observed = observed or observed_now
                times.append(seconds)
                calls, seen = made, len(observed_now["containers"])
            results[label] = (median(times), max(times), calls, seen)
    return results


def main(count=500):
    client = docker_client()
    image = images(client)["1"]
    # FILROUGE_BENCH_LABEL reuses the containers of an interrupted run (starting 500 takes minutes).
    label = os.environ.get("FILROUGE_BENCH_LABEL") or f"probe-{uuid.uuid4().hex[:6]}"
    rows = []

    def add_rows():
        for how, (seconds, worst, calls, seen) in probe().items():
            rows.append([seen, how, f"{seconds:.3f}", f"{worst:.3f}", len(calls), ", ".join(calls)])

    try:
        started, _ = timed(lambda: start_many(client, image, count, label))
        print(f"{count} containers up after {started:.1f} s", flush=True)
        add_rows()
    finally:
        remove_all(client, label)
    add_rows()  # the same engine without them
    table("Engine probe (median and worst of 5 probes; list calls run side by side)", ["containers", "probe", "median s", "worst s", "API calls", "calls"], rows)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
