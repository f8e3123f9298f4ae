"""The 600-byte nine-level YAML alias bomb through each entry point: time to refusal and
growth of the web process's memory.

    .venv/bin/python benchmarks/bench_yaml_bombs.py [--repeat 5]

Pages, API and uploads are sent over HTTP to a real gunicorn with ONE worker, whose RSS
is sampled every 2 ms while the request runs (peak minus idle). Management commands and
the job-side readers (driver, manifests, a lab's compose guard) run in this process. For
scale, the last table feeds smaller bombs to plain PyYAML (what every entry point did
before panel.lib.safe_yaml) in a child process.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from io import StringIO
from pathlib import Path

from common import ROOT, machine_line, print_table, setup_django

setup_django(database="filrouge_bench_hostile", redis_db=13)

import psutil  # noqa: E402
import requests  # noqa: E402

from clusters.models import Cluster  # noqa: E402
from labs.models import Course  # noqa: E402
from panel.accounts.models import ApiToken, Role, TokenScope, User  # noqa: E402
from tests.fixtures.workers import child_env  # noqa: E402
from tests.support.hostile import yaml_bomb  # noqa: E402
from tests.support.ports import free_port, wait_for_port  # noqa: E402

BOMB = yaml_bomb()
LIMIT = "YAML_MAX_NODES"
PASSWORD = "bench password 123"
SCRATCH = Path(tempfile.mkdtemp(prefix="filrouge-bench-yaml-"))


class Sampler:
    """Peak RSS of one process while a block runs."""

    def __init__(self, process):
        self.process = process

    def __enter__(self):
        self.idle = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while self.running:
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self):
        return (self.peak - self.idle) / 1048576


def prepare():
    User.objects.filter(username__in=["bench-op", "bench-teacher"]).delete()
    operator = User.objects.create_user("bench-op", password=PASSWORD, role=Role.OPERATOR)
    teacher = User.objects.create_user("bench-teacher", password=PASSWORD, role=Role.TEACHER)
    cluster = Cluster.objects.create(name="bench-local", kind="docker", endpoint="unix:///var/run/docker.sock")
    course = Course.objects.create(title="Bench", slug="bench", code="BENCH1")
    course.teachers.add(teacher)
    _token, plaintext = ApiToken.issue(operator, "bench", TokenScope.WRITE)
    return cluster, course, plaintext


def browser_session(base, username):
    session = requests.Session()
    session.get(f"{base}/accounts/login/")
    response = session.post(f"{base}/accounts/login/", data={"username": username, "password": PASSWORD,
                                                             "csrfmiddlewaretoken": session.cookies["csrftoken"]},
                            headers={"Referer": f"{base}/accounts/login/"}, allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    return session


def http_entry_points(base, cluster, course, token, BOMB=BOMB):
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    operator, teacher = browser_session(base, "bench-op"), browser_session(base, "bench-teacher")

    def form(session, path, data, files=None):
        session.get(f"{base}{path}")  # the form page once, for its CSRF cookie: only the POST is timed

        def send():
            response = session.post(f"{base}{path}", data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]}, files=files,
                                    headers={"Referer": f"{base}{path}"}, allow_redirects=False)
            response.session = session
            return response
        return send

    def api_post(path, body):
        return lambda: api.post(f"{base}{path}", json=body)

    return [
        ("page: server variables", form(operator, "/inventory/servers/new/", {"name": "web01", "address": "10.0.0.1", "port": "22", "user": "root", "variables_text": BOMB})),
        ("page: group variables", form(operator, "/inventory/groups/new/", {"name": "europe", "variables_text": BOMB})),
        ("page: inventory import", form(operator, "/inventory/import/", {"text": BOMB, "format": "yaml"})),
        ("page: compose import", form(operator, "/services/import/", {"cluster": cluster.pk, "project": "shop", "text": BOMB})),
        ("page: service YAML settings", form(operator, "/services/new/", {"name": "api", "cluster": cluster.pk, "project": "shop", "image": "app/api", "tag": "1", "replicas": 1, "spec_yaml": BOMB})),
        ("page: kubeconfig credential", form(operator, "/inventory/credentials/new/?kind=kubeconfig", {"kind": "kubeconfig", "name": "kube", "secret_kubeconfig": BOMB})),
        ("page: Kubernetes cluster", form(operator, "/inventory/clusters/kubernetes/new/", {"mode": "kubeconfig", "name": "k", "kubeconfig": BOMB})),
        ("upload: exercise file", form(teacher, f"/labs/courses/{course.pk}/import/", {}, files={"file": ("bomb.yaml", BOMB.encode(), "application/yaml")})),
        ("API: inventory import", api_post("/api/inventory/import/", {"text": BOMB, "source": "hosts.yml", "format": "yaml"})),
        ("API: recipe run playbook", api_post("/api/recipe-runs/", {"playbook": BOMB, "limit": "all"})),
        ("API: Kubernetes cluster", api_post("/api/clusters/kubernetes/", {"name": "k", "kubeconfig": BOMB})),
    ]


def in_process_entry_points(cluster):
    from django.core.management import call_command

    from clusters.drivers.kubernetes import parse_kubeconfig
    from clusters.kubernetes.manifests import parse_documents
    from labs.compose.guard import guard_compose

    path = SCRATCH / "bomb.yml"
    path.write_text(BOMB)
    course = SCRATCH / "course"
    shutil.copytree(ROOT / "tests" / "labs" / "data" / "course-ok", course, dirs_exist_ok=True)
    (course / "a-two-tier.yaml").write_text(BOMB)

    def command(*args):
        return lambda: call_command(*args, stdout=StringIO(), stderr=StringIO())

    from panel.lib import safe_yaml

    return [
        ("the loader itself: safe_yaml.load", lambda: safe_yaml.load(BOMB)),
        ("command: import_inventory", command("import_inventory", str(path), "--format", "yaml")),
        ("command: run_recipe", command("run_recipe", str(path), "--limit", "all")),
        ("command: import_compose", command("import_compose", str(path), "--cluster", cluster.name, "--dry-run")),
        ("command: load_course", command("load_course", str(course))),
        ("job: kubeconfig (driver)", lambda: parse_kubeconfig(BOMB)),
        ("job: manifests", lambda: parse_documents([("bomb.yaml", BOMB)])),
        ("lab: student's compose file", lambda: guard_compose(BOMB, {"web": 20001})),
    ]


def run_http(points, baseline_points, worker, repeat):
    rows = []
    baseline = {}
    for name, send in baseline_points:  # the same request with one broken line of YAML: what any bad input costs
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            send()
            times.append(time.perf_counter() - started)
        baseline[name] = sorted(times)[len(times) // 2] * 1000
    for name, send in points:
        times, growth, refused = [], 0.0, True
        for _ in range(repeat):
            with Sampler(worker) as sampler:
                started = time.perf_counter()
                response = send()
                times.append(time.perf_counter() - started)
            growth = max(growth, sampler.growth_mb)
            if response.status_code == 302:  # the upload page redirects to the course page, which shows the message
                response = response.session.get(requests.compat.urljoin(response.url, response.headers["Location"]))
                refused = refused and LIMIT in response.text
            else:
                refused = refused and response.status_code == 400 and LIMIT in response.text
        rows.append([name, f"{sorted(times)[len(times) // 2] * 1000:.1f}", f"{max(times) * 1000:.1f}", f"{baseline[name]:.1f}", f"{growth:.1f}", "yes" if refused else "NO"])
    return rows


def run_in_process(points, repeat):
    rows = []
    me = psutil.Process()
    for name, call in points:
        times, growth, refused = [], 0.0, True
        for _ in range(repeat):
            with Sampler(me) as sampler:
                started = time.perf_counter()
                try:
                    call()
                    message = ""
                except BaseException as exc:  # CommandError, DriverError, ManifestInvalid, ComposeError
                    message = str(exc) + " ".join(getattr(exc, "problems", []) or [])
                times.append(time.perf_counter() - started)
            growth = max(growth, sampler.growth_mb)
            refused = refused and LIMIT in message
        rows.append([name, f"{sorted(times)[len(times) // 2] * 1000:.1f}", f"{max(times) * 1000:.1f}", f"{growth:.1f}", "yes" if refused else "NO"])
    return rows


UNPROTECTED = """
import json, resource, sys, time, yaml
sys.path.insert(0, {root!r})
from tests.support.hostile import yaml_bomb
text = yaml_bomb(levels={levels})
before = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1024  # current RSS, KiB
start = time.perf_counter()
data = yaml.safe_load(text)
out = json.dumps(data)  # what a JSONField save (server variables, service spec) does with it
seconds = time.perf_counter() - start
after = int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1024
# (ru_maxrss would be the forked parent's peak: a child starts with it)
print(seconds, (after - before) / 1024)
"""


def run_unprotected(levels_list):
    rows = []
    for levels in levels_list:
        code = UNPROTECTED.format(root=str(ROOT), levels=levels)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        seconds, peak_mb = (float(x) for x in result.stdout.split())
        rows.append([f"{levels} levels ({9 ** levels:,} nodes expanded)", f"{len(yaml_bomb(levels=levels))}", f"{seconds * 1000:.0f}", f"{peak_mb:.0f}"])
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(machine_line())
    print(f"Bomb: {len(BOMB)} bytes, 9 levels of 9 aliases (387,420,489 nodes once expanded).")
    cluster, course, token = prepare()

    port = free_port()
    env = child_env(DJANGO_SETTINGS_MODULE="tests.settings", FILROUGE_VAR_DIR=str(SCRATCH / "var"))
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env["REDIS_URL"] = os.environ["REDIS_URL"]
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "panel.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                               "--timeout", "120", "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        wait_for_port("127.0.0.1", port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        requests.get(f"{base}/accounts/login/")
        worker = psutil.Process(server.pid).children()[0]
        points = http_entry_points(base, cluster, course, token)
        baseline_points = http_entry_points(base, cluster, course, token, BOMB="a: [1, 2\nb: {\n")
        for _name, send in points + baseline_points:  # warm every view once: imports and templates are not the bomb's doing
            send()
        idle_mb = worker.memory_info().rss / 1048576
        http_rows = run_http(points, baseline_points, worker, args.repeat)
        after_mb = worker.memory_info().rss / 1048576
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print_table(f"Over HTTP, gunicorn with one worker (idle RSS {idle_mb:.0f} MB, {after_mb:.0f} MB after {args.repeat} bombs per entry point)",
                ["entry point", "refusal p50 ms", "max ms", "broken 2-line YAML p50 ms", "worker RSS growth MB", "refused naming the limit"], http_rows)

    in_rows = run_in_process(in_process_entry_points(cluster), args.repeat)
    print_table("In process (commands, job side)", ["entry point", "refusal p50 ms", "max ms", "process RSS growth MB", "refused naming the limit"], in_rows)

    print_table("For scale: plain PyYAML safe_load + json.dumps (before), smaller bombs, child process",
                ["bomb", "bytes", "time ms", "RSS growth MB"], run_unprotected([5, 6, 7]))
    shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
