"""A Kubernetes stand-in in its own process for benchmarks (so its controllers do not share
the measured process's interpreter lock). Driven by lines on stdin:

    pods N      -> make bench pods until N exist (50 namespaces)  -> "ok SECONDS"
    reset       -> clear the request log                          -> "ok"
    count       -> number of requests received since the reset    -> "ok N"
    ready NS    -> mark every pod of namespace NS running and ready -> "ok UNIX_TIME" (when written)
    services N  -> make Services svc-0..N-1 (port tcp-8080, selecting the bench pods), round-robin
                   over the 50 namespaces                          -> "ok"
    app SECONDS -> CPU time the emulated app spends per request (default 0.05) -> "ok"
    quit

It prints one JSON line first: {"kubeconfig": ...}.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAMESPACES = 50


def add_pods(api, total):
    from tests.kubeapi.meta import rfc3339

    existing = sum(1 for pod in api.store.items("/pods") if (pod["metadata"].get("labels") or {}).get("bench") == "1")
    nodes = [node["metadata"]["name"] for node in api.store.items("/nodes")]
    for index in range(existing, total):
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"app-{index:05d}", "namespace": f"bench-{index % NAMESPACES:02d}", "labels": {"bench": "1", "app": "app"}},
            "spec": {"nodeName": nodes[index % len(nodes)], "containers": [{"name": "app", "image": "registry.example/app:1"}]},
            "status": {"phase": "Running", "podIP": f"10.244.{index // 250}.{index % 250}", "startTime": rfc3339(),
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "image": "registry.example/app:1", "ready": True, "restartCount": 0, "started": True,
                                              "state": {"running": {"startedAt": rfc3339()}}}]},
        }
        api.registry.create_internal("/pods", pod, "bench")


def main():
    from tests.kubeapi import KubeStandin

    api = KubeStandin(tls=True, nodes=3)
    api.start()
    api.kubelet_mode = "manual"
    for index in range(NAMESPACES):
        api.registry.create_internal("/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{index:02d}"}}, "bench")
    print(json.dumps({"kubeconfig": api.kubeconfig()}), flush=True)
    try:
        for line in sys.stdin:
            command = line.split()
            if not command or command[0] == "quit":
                break
            if command[0] == "pods":
                started = time.perf_counter()
                add_pods(api, int(command[1]))
                print(f"ok {time.perf_counter() - started:.2f}", flush=True)
            elif command[0] == "reset":
                api.reset_request_log()
                print("ok", flush=True)
            elif command[0] == "ready":
                for pod in api.store.items("/pods", command[1]):
                    api.set_pod_phase(command[1], pod["metadata"]["name"], ready=True)
                print(f"ok {time.time():.6f}", flush=True)
            elif command[0] == "services":
                for index in range(int(command[1])):
                    namespace = f"bench-{index % NAMESPACES:02d}"
                    if api.store.get("/services", namespace, f"svc-{index}") is None:
                        api.registry.create_internal("/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{index}", "namespace": namespace},
                                                                   "spec": {"selector": {"app": "app"}, "ports": [{"name": "tcp-8080", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]}}, "bench")
                print("ok", flush=True)
            elif command[0] == "app":
                api.app_cpu_per_request = float(command[1])
                print("ok", flush=True)
            elif command[0] == "count":
                print(f"ok {len(api.request_log)}", flush=True)
    finally:
        api.stop()


if __name__ == "__main__":
    main()
