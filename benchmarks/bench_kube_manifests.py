"""Raw manifests on Kubernetes: discovery requests, dry-run diff and apply for 10 and 100 objects.

Against the Kubernetes stand-in (tests/kubeapi) over real HTTPS with the official client:
validation costs the same few discovery requests whatever the number of objects (goal:
independent of N), a dry-run diff two requests per object (read + dry-run apply), an
apply one per object (plus one dry run per object first). Half the objects are ConfigMaps, half Deployments of 0 replicas
(so that the stand-in's controllers, in this process, do not compete with the requests measured; rollouts are not timed here).

    .venv/bin/python benchmarks/bench_kube_manifests.py [N ...]
"""

import sys

import time

from common import machine_line, print_table  # also puts the project on sys.path


def timed(work):
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def manifests(count, prefix):
    documents = []
    for index in range(count):
        if index % 2:
            documents.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {prefix}-d{index}}}\nspec:\n  replicas: 0\n  selector: {{matchLabels: {{app: {prefix}-d{index}}}}}\n"
                             f"  template:\n    metadata: {{labels: {{app: {prefix}-d{index}}}}}\n    spec: {{containers: [{{name: app, image: 'bench/app:1'}}]}}\n")
        else:
            documents.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {prefix}-c{index}}}\ndata: {{index: '{index}'}}\n")
    return [("bench.yaml", "---\n".join(documents))]


def requests_during(api, work):
    api.reset_request_log()
    seconds, value = timed(work)
    return seconds, len(api.request_log), value


def main(sizes):
    from kubernetes import client as k8s

    from clusters.kubernetes import manifests as km
    from tests.kubeapi import KubeStandin

    rows = []
    with KubeStandin(tls=True) as api:
        api_client = api.api_client()
        for count in sizes:
            namespace = f"bench-{count}"
            k8s.CoreV1Api(api_client).create_namespace({"metadata": {"name": namespace}})
            sources = manifests(count, "b")
            seconds, requests, (objects, discovery) = requests_during(api, lambda: km.load_and_validate(api_client, sources, namespace))
            rows.append((count, "validate (parse + discovery)", f"{seconds * 1000:.0f} ms", requests, discovery.requests))
            seconds, requests, diffs = requests_during(api, lambda: km.diff_objects(api_client, objects))
            rows.append((count, "dry-run diff (all created)", f"{seconds * 1000:.0f} ms", requests, "-"))
            seconds, requests, _ = requests_during(api, lambda: km.preflight(api_client, objects))
            rows.append((count, "apply's preflight dry run", f"{seconds * 1000:.0f} ms", requests, "-"))
            seconds, requests, applied = requests_during(api, lambda: km.apply_objects(api_client, objects))
            rows.append((count, "apply (server-side)", f"{seconds * 1000:.0f} ms", requests, "-"))
            seconds, requests, diffs = requests_during(api, lambda: km.diff_objects(api_client, objects))
            unchanged = sum(1 for d in diffs if d.state == "unchanged")
            rows.append((count, f"dry-run diff again ({unchanged} unchanged)", f"{seconds * 1000:.0f} ms", requests, "-"))
            seconds, requests, applied = requests_during(api, lambda: km.apply_objects(api_client, objects))
            rows.append((count, "apply again (no change)", f"{seconds * 1000:.0f} ms", requests, "-"))
        api_client.close()
    print(machine_line())
    print_table("Kubernetes manifests (stand-in over HTTPS)", ["objects", "step", "time", "API requests", "discovery requests"], rows)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 100])
