"""Run the stand-in on its own, at a real cluster's pace, to rehearse the real-cluster paths
of the Kubernetes tests:

    .venv/bin/python -m tests.kubeapi.serve /tmp/standin.kubeconfig [--no-metrics]
    FILROUGE_TEST_KUBECONFIG=/tmp/standin.kubeconfig .venv/bin/python -m pytest tests/...

The tests then see a "real" cluster (no levers: `kube_target.api` is None), so they take
their real-cluster branch: real timings (15 s metrics window and HPA sync), skips where a
lever is needed, and with --no-metrics a cluster without metrics-server. It checks the
tests' logic at that pace, not a real cluster's behaviour. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import time

from .standin import KubeStandin


def main():
    parser = argparse.ArgumentParser(description="the Kubernetes stand-in on its own, at a real cluster's pace")
    parser.add_argument("kubeconfig", help="where to write its admin kubeconfig")
    parser.add_argument("--no-metrics", action="store_true", help="play a cluster without metrics-server")
    args = parser.parse_args()
    api = KubeStandin(tls=True)
    api.start()
    api.metrics_server = not args.no_metrics
    with open(os.open(args.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(api.kubeconfig())
    print(f"stand-in at {api.url}, kubeconfig in {args.kubeconfig}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()


if __name__ == "__main__":
    main()
