"""A real Prometheus (Debian's package) scraping one loopback target, for the metrics tests."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from .ports import free_port, wait_until


class Prometheus:
    def __init__(self, target, scrape_interval="1s"):
        self.dir = Path(tempfile.mkdtemp(prefix="filrouge-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  evaluation_interval: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: filrouge\n"
            "    metrics_path: /metrics\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        self.log = open(self.dir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

        def ready():
            try:
                return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except requests.RequestException:
                assert self.process.poll() is None, (self.dir / "prometheus.log").read_text()
                return False

        wait_until(ready, timeout=60, interval=0.2, message="Prometheus did not become ready")

    def query(self, expression):
        """The result list of an instant query; [] while Prometheus cannot answer yet (a busy
        machine can leave a request without a body)."""
        try:
            answer = requests.get(f"{self.url}/api/v1/query", params={"query": expression}, timeout=5)
            answer.raise_for_status()
            return answer.json()["data"]["result"]
        except (requests.RequestException, ValueError, KeyError):
            assert self.process.poll() is None, (self.dir / "prometheus.log").read_text()
            return []

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
