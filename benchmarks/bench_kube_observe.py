"""Requests and time to refresh the observed state of a Kubernetes cluster, 200 vs 2,000 pods.

A TLS stand-in (tests/kubeapi), in its own process, gets 50 namespaces holding 200,
then 2,000 pods (made straight in its store, bound to nodes and running). The panel's
observe (`clusters.kubernetes.jobs.observe_kube_cluster`, what the periodic probe and the
kube-observe job run) refreshes the cluster through the official client over HTTPS and
stores it. Goal: the number of requests does not depend on the number of pods. The
size of what is stored (Cluster.observed as JSON, with its index of at most 500 running
pods and their containers for the pod terminal's picker) is printed too.

    .venv/bin/python benchmarks/bench_kube_observe.py [ROUNDS]
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from common import machine_line, print_table, setup_django

HERE = Path(__file__).resolve().parent


class StandinProcess:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(HERE / "kube_standin_process.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.kubeconfig = json.loads(self.process.stdout.readline())["kubeconfig"]

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        if not answer or answer[0] != "ok":
            raise RuntimeError(f"stand-in process answered {answer!r} to {command!r}")
        return answer[1] if len(answer) > 1 else None

    def stop(self):
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.process.kill()
            self.process.wait()


def main(rounds=5):
    setup_django(database="filrouge_bench_kube", redis_db=3)
    from clusters.kubernetes.jobs import observe_kube_cluster
    from clusters.models import Cluster, Credential

    standin = StandinProcess()
    try:
        credential = Credential(name="bench-kubeconfig", kind="kubeconfig")
        credential.set_secret({"kubeconfig": standin.kubeconfig})
        credential.save()
        cluster = Cluster.objects.create(name="bench-kube", kind="kubernetes", credential=credential)
        rows = []
        for total in (200, 2000):
            made = float(standin.ask(f"pods {total}"))
            for index in range(50):  # the kubelet is manual: make them Running, as the pod index keeps only those
                standin.ask(f"ready bench-{index:02d}")
            times, requests = [], []
            for _ in range(rounds):
                standin.ask("reset")
                started = time.perf_counter()
                observed = observe_kube_cluster(cluster)
                times.append(time.perf_counter() - started)
                requests.append(int(standin.ask("count")))
            times.sort()
            stored = len(json.dumps(observed))
            pod_index = len(json.dumps(observed.get("pods") or []))
            rows.append([f"{observed['workloads']['pods']} pods in {len(observed['namespaces'])} namespaces", f"{made:.1f} s",
                         str(requests[0]) if len(set(requests)) == 1 else f"{min(requests)}-{max(requests)}",
                         f"{times[len(times) // 2] * 1000:.0f} ms", f"{times[-1] * 1000:.0f} ms",
                         f"{stored / 1024:.0f} KiB ({pod_index / 1024:.0f} KiB pods index)"])
        print(machine_line())
        print_table(f"Observe a cluster (requests counted by the API; median and max of {rounds} refreshes; HTTPS, official client)",
                    ["cluster", "pods made in", "requests per refresh", "time p50", "time max", "stored"], rows)
    finally:
        standin.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
