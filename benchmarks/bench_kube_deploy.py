"""How fast a Kubernetes deploy shows its rollout progress in the job log.

A real RQ worker runs the deploy jobs; the cluster is the TLS stand-in in its own
process, its kubelet in manual mode so that the benchmark decides when pods become
ready. Two figures per round:
- from the deploy API request (POST /api/services/<id>/deploy/) to the first rollout
  progress line readable in the job log (what the live page and /api/jobs/<id>/events/ see);
- from the API reporting a change (the pod marked ready in the cluster) to the line
  "ready 1/1" readable in the job log. Goal: <= 1 s.

    .venv/bin/python benchmarks/bench_kube_deploy.py [ROUNDS]
"""

import sys
import tempfile
import time
from pathlib import Path

from bench_kube_observe import StandinProcess
from common import machine_line, print_table, setup_django, summary_ms


def wait_for_line(job_id, needle, timeout=60):
    from panel.jobs.models import JobEvent

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if JobEvent.objects.filter(job_id=job_id, task="rollout", text__contains=needle).exists():
            return time.time()
        time.sleep(0.005)
    raise RuntimeError(f"no rollout line with {needle!r} in job {job_id} within {timeout} s")


def main(rounds=5):
    setup_django(database="filrouge_bench_kube", redis_db=3)
    from rest_framework.test import APIClient

    from clusters.models import Cluster, Credential
    from deployments.models import Service
    from deployments.spec import normalize_spec
    from panel.accounts.models import ApiToken, Role, TokenScope, User
    from panel.jobs.models import Job, JobEvent
    from tests.fixtures.workers import start_worker

    standin = StandinProcess()
    worker = None
    try:
        credential = Credential(name="bench-kubeconfig", kind="kubeconfig")
        credential.set_secret({"kubeconfig": standin.kubeconfig})
        credential.save()
        cluster = Cluster.objects.create(name="bench-kube", kind="kubernetes", credential=credential)
        user = User.objects.create(username="bench-operator", role=Role.OPERATOR)
        _token, plaintext = ApiToken.issue(user, "bench", TokenScope.WRITE)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
        worker = start_worker(Path(tempfile.mkdtemp(prefix="filrouge-bench-")), name="kube-bench")
        to_first_line, api_to_line, queued_to_started, started_to_line = [], [], [], []
        for index in range(rounds):
            namespace = f"bench-{index:02d}"
            service = Service.objects.create(name=f"web{index}", cluster=cluster, project=namespace, spec=normalize_spec(
                {"image": "registry.example/app", "tag": "1", "replicas": 1, "ports": [{"container": 8080}], "update": {"monitor": 60}}))
            started = time.time()
            response = client.post(f"/api/services/{service.pk}/deploy/", {}, format="json")
            assert response.status_code == 202, response.content
            job_id = response.json()["job"]["id"]
            to_first_line.append(wait_for_line(job_id, "updated ") - started)
            job = Job.objects.get(pk=job_id)
            first = JobEvent.objects.filter(job_id=job_id, task="rollout").order_by("seq").first()
            queued_to_started.append(job.started_at.timestamp() - started)
            started_to_line.append(first.time.timestamp() - job.started_at.timestamp())
            reported = float(standin.ask(f"ready {namespace}"))
            api_to_line.append(wait_for_line(job_id, "ready 1/1") - reported)
            deadline = time.monotonic() + 60
            while not Job.objects.get(pk=job_id).is_finished and time.monotonic() < deadline:
                time.sleep(0.05)
            job = Job.objects.get(pk=job_id)
            if job.status != "succeeded":
                raise RuntimeError(f"deploy job {job_id} ended {job.status}: {job.error}")
        first, follow = summary_ms(to_first_line), summary_ms(api_to_line)
        pickup, work = summary_ms(queued_to_started), summary_ms(started_to_line)
        print(machine_line())
        print_table(f"Kubernetes deploy: rollout progress in the job log ({rounds} deploys, real RQ worker, stand-in over HTTPS)",
                    ["interval", "p50 ms", "p95 ms", "max ms"], [
                        ["deploy API request -> first progress line readable", f"{first['p50']:.0f}", f"{first['p95']:.0f}", f"{first['max']:.0f}"],
                        ["  of which: request -> job running on the worker", f"{pickup['p50']:.0f}", f"{pickup['p95']:.0f}", f"{pickup['max']:.0f}"],
                        ["  of which: job running -> first progress line written", f"{work['p50']:.0f}", f"{work['p95']:.0f}", f"{work['max']:.0f}"],
                        ["API reports pod ready -> 'ready 1/1' line readable", f"{follow['p50']:.0f}", f"{follow['p95']:.0f}", f"{follow['max']:.0f}"],
                    ])
    finally:
        if worker is not None:
            worker.stop()
        standin.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
