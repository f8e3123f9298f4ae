"""The load generator: an asyncio loop of aiohttp requests with bounded concurrency and an
optional request rate, reporting each second's figures to a callback.

Why not locust: it needs gevent's monkey-patching, which does not belong in an RQ worker that
also runs paramiko and the Kubernetes client. One asyncio loop keeps a worker's CPU busy at
several thousand requests per second (benchmarks/bench_metrics.py and bench_loadtest.py compare it with `ab`).
"""

import asyncio
import math
import queue
import threading
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Second:
    """The figures of one reporting interval."""

    elapsed: float
    requests: int = 0
    errors: int = 0
    latencies: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)

    def percentile(self, p):
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def as_dict(self, interval):
        return {
            "elapsed": round(self.elapsed, 2), "requests": self.requests, "errors": self.errors,
            "rps": self.requests / interval, "errors_per_second": self.errors / interval,
            "p50": self.percentile(50), "p95": self.percentile(95), "p99": self.percentile(99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list = field(default_factory=list)
    statuses: dict = field(default_factory=dict)
    error_examples: list = field(default_factory=list)

    def summary(self):
        ordered = sorted(self.latencies)

        def pct(p):
            return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))] if ordered else None

        return {
            "requests": self.requests, "errors": self.errors, "seconds": round(self.seconds, 3),
            "rps": self.requests / self.seconds if self.seconds else 0.0,
            "p50": pct(50), "p95": pct(95), "p99": pct(99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "error_examples": self.error_examples[:5],
        }


async def _run(url, method, concurrency, duration, rate, expected_status, on_second, should_stop, timeout, interval, headers=None, ssl_context=None):
    totals = Totals()
    current = Second(elapsed=0.0)
    started = time.perf_counter()
    deadline = started + duration
    next_slot = started
    slot_lock = asyncio.Lock()
    # ssl=None: aiohttp's default verification; an SSLContext: that one (a cluster's CA and client certificate)
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=300, ssl=ssl_context if ssl_context is not None else True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async def wait_for_slot():
        nonlocal next_slot
        if not rate:
            return True
        async with slot_lock:
            slot = max(next_slot, time.perf_counter())
            next_slot = slot + 1.0 / rate
        delay = slot - time.perf_counter()
        if slot >= deadline:
            return False
        if delay > 0:
            await asyncio.sleep(delay)
        return True

    async def worker(session):
        while time.perf_counter() < deadline and not should_stop():
            if not await wait_for_slot():
                return
            began = time.perf_counter()
            status, error = None, None
            try:
                async with session.request(method, url, allow_redirects=False) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            latency = time.perf_counter() - began
            ok = error is None and status == expected_status
            for bucket in (current, totals):
                bucket.requests += 1
                bucket.latencies.append(latency)
                key = status if status is not None else "error"
                bucket.statuses[key] = bucket.statuses.get(key, 0) + 1
                if not ok:
                    bucket.errors += 1
            if not ok and len(totals.error_examples) < 5:
                totals.error_examples.append(error or f"status {status}, expected {expected_status}")

    async def reporter():
        nonlocal current
        tick = started
        while True:
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            done, current = current, Second(elapsed=time.perf_counter() - started)
            done.elapsed = tick - started
            on_second(done.as_dict(interval))
            if time.perf_counter() >= deadline or should_stop():
                return

    session_headers = {"User-Agent": "filrouge-load-test", **(headers or {})}
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout, headers=session_headers) as session:
        report = asyncio.create_task(reporter())
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        totals.seconds = time.perf_counter() - started
        report.cancel()
    if current.requests:
        on_second(current.as_dict(max(0.001, (time.perf_counter() - started) - current.elapsed)))
    return totals.summary()


def run_load(url, method="GET", concurrency=10, duration=10.0, rate=None, expected_status=200,
             on_second=lambda figures: None, should_stop=lambda: False, timeout=10.0, interval=1.0,
             headers=None, ssl_context=None):
    """Send requests to `url` for `duration` seconds from `concurrency` clients (at most `rate`
    per second in all when given); call `on_second(figures)` every `interval`; return totals.

    `headers` are sent with every request (e.g. the bearer token of a Kubernetes service proxy,
    `clusters.drivers.kubernetes.service_proxy_target`): they are never logged nor returned,
    and the caller registers the token with `ctx.add_secret`. `ssl_context` verifies an https
    URL (a cluster's CA, a client certificate); None: the system's default verification.

    The event loop runs in a thread of its own; `on_second` is called in the caller's thread
    (where the job may write to the database and be cancelled). If it raises, the load stops
    and the exception goes on."""
    figures = queue.Queue()
    stop = threading.Event()
    outcome = {}

    def loop():
        try:
            outcome["result"] = asyncio.run(_run(url, method, concurrency, duration, rate, expected_status, figures.put,
                                                 lambda: stop.is_set() or should_stop(), timeout, interval, headers, ssl_context))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc
        finally:
            figures.put(None)

    thread = threading.Thread(target=loop, name="load-test", daemon=True)
    thread.start()
    try:
        while True:
            item = figures.get()
            if item is None:
                break
            on_second(item)
    except BaseException:
        stop.set()
        thread.join(timeout + 5)
        raise
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# ---- wrk: a C load generator, driven one second at a time -----------------------------------

WRK_SCRIPT = """
wrk.method = os.getenv("FILROUGE_LOAD_METHOD") or "GET"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('FILROUGE {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50": %d, "p95": %d, "p99": %d, "mean": %f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


def wrk_available():
    import shutil

    return shutil.which("wrk") is not None


def run_wrk(url, method="GET", concurrency=10, duration=10.0, on_second=lambda figures: None, should_stop=lambda: False, timeout=10.0, slice_seconds=1):
    """The same figures as run_load, measured by `wrk` (Debian's package) in one-second runs:
    wrk reports only at its end, so each second is a run of its own. wrk counts a status of
    400 and above as an error, hence it serves loads that expect a 2xx or 3xx answer."""
    import json
    import os
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    totals = {"requests": 0, "errors": 0, "seconds": 0.0, "latencies": []}
    started = time.perf_counter()
    examples = []
    try:
        while time.perf_counter() - started < duration - 0.05 and not should_stop():
            seconds = max(1, min(slice_seconds, round(duration - (time.perf_counter() - started))))
            command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", f"--timeout={int(timeout)}s", "-s", script.name, url]
            out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout + 10,
                                 env={**os.environ, "FILROUGE_LOAD_METHOD": method})
            line = next((line for line in out.stdout.splitlines() if line.startswith("FILROUGE ")), None)
            if line is None:
                raise RuntimeError(f"wrk gave no figures: {(out.stderr or out.stdout).strip()[:300]}")
            figures = json.loads(line.removeprefix("FILROUGE "))
            elapsed = figures["duration_us"] / 1e6 or seconds
            errors = sum(figures[key] for key in ("connect", "read", "write", "status", "timeout"))
            if errors and len(examples) < 5:
                examples.append(f"wrk errors: connect {figures['connect']}, read {figures['read']}, write {figures['write']}, status>=400 {figures['status']}, timeout {figures['timeout']}")
            totals["requests"] += figures["requests"]
            totals["errors"] += errors
            totals["seconds"] += elapsed
            totals["latencies"].append((figures["requests"], figures["p50"] / 1e6, figures["p95"] / 1e6, figures["p99"] / 1e6))
            on_second({
                "elapsed": round(time.perf_counter() - started, 2), "requests": figures["requests"], "errors": errors,
                "rps": figures["requests"] / elapsed, "errors_per_second": errors / elapsed,
                "p50": figures["p50"] / 1e6 if figures["requests"] else None, "p95": figures["p95"] / 1e6 if figures["requests"] else None,
                "p99": figures["p99"] / 1e6 if figures["requests"] else None, "statuses": {},
            })
    finally:
        os.unlink(script.name)

    def weighted(index):
        # wrk gives percentiles per run: across runs, the request-weighted average of them.
        count = sum(row[0] for row in totals["latencies"])
        return sum(row[0] * row[index] for row in totals["latencies"]) / count if count else None

    return {
        "requests": totals["requests"], "errors": totals["errors"], "seconds": round(totals["seconds"], 3),
        "rps": totals["requests"] / totals["seconds"] if totals["seconds"] else 0.0,
        "p50": weighted(1), "p95": weighted(2), "p99": weighted(3), "statuses": {}, "error_examples": examples, "engine": "wrk",
    }
