"""The `load-test` job kind: HTTP load on a service, or on a URL of a machine the panel manages.

Each second goes into the job log (requests/s, latency p50/p95/p99, errors) and into metric
series of the service (or server / cluster) for the live chart; on Kubernetes the autoscaler's
desired replicas are sampled beside them every few seconds, so both share one time axis.

Other kinds that load something reuse the parameters' shape and bounds (`LoadShapeParams`)
and the job's body (`run_load_test`): labs/loadtest.py, a teacher's load test on a lab
environment, whose series point at the environment.
"""

import abc
import ipaddress
import time
from urllib.parse import urlsplit

import metrics
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from panel.jobs.errors import JobFailed
from panel.jobs.kinds import JobKind, register

from clusters.models import Cluster, Server
from deployments.models import Service

from .engine import run_load, run_wrk, wrk_available

HPA_EVERY = 5  # seconds between reads of the autoscaler during a Kubernetes load test


def endpoint_host(cluster):
    """The host name where a cluster's published ports answer: the endpoint's host, or the
    loopback address for an engine reached by its local unix socket."""
    endpoint = cluster.endpoint or "unix:///var/run/docker.sock"
    if endpoint.startswith("unix://"):
        return "127.0.0.1"
    return urlsplit(endpoint if "://" in endpoint else f"tcp://{endpoint}").hostname or ""


def managed_hosts():
    """Every address the panel manages: its servers and its clusters' endpoints."""
    hosts = {address.lower() for address in Server.objects.values_list("address", flat=True)}
    for cluster in Cluster.objects.all():
        host = endpoint_host(cluster)
        if host:
            hosts.add(host.lower())
    if "127.0.0.1" in hosts:
        hosts.update({"localhost", "::1"})
    return hosts


PROXY_SCHEME = "service-proxy"


def kubernetes_node_port(service):
    """The NodePort a Kubernetes service publishes (reachable at the cluster endpoint's host), or None."""
    if service.spec.get("service_type") != "NodePort":
        return None
    for port in service.spec.get("ports") or []:
        published = port.get("published")
        if port.get("protocol", "tcp") == "tcp" and published and 30000 <= int(published) <= 32767:
            return int(published)
    return None


def proxy_url(service, path):
    """`service-proxy://NAMESPACE/NAME:PORT/path`: a Kubernetes service reached through the API
    server's service proxy (the job resolves it with the cluster's credential)."""
    tcp = [port for port in (service.spec.get("ports") or []) if port.get("protocol", "tcp") == "tcp" and port.get("container")]
    if not tcp:
        raise serializers.ValidationError({"service": _("This service has no TCP port to send requests to.")})
    port = tcp[0].get("published") or tcp[0]["container"]
    return f"{PROXY_SCHEME}://{service.project}/{service.name}:{port}{path}"


def service_url(service, path):
    if service.cluster.kind == "kubernetes" and kubernetes_node_port(service) is None:
        # No NodePort the panel could reach: through the API server, as `kubectl proxy` would.
        return proxy_url(service, path)
    if service.cluster.kind == "kubernetes":
        return f"http://{endpoint_host(service.cluster) or '127.0.0.1'}:{kubernetes_node_port(service)}{path}"
    ports = [port for port in (service.spec.get("ports") or []) if port.get("published") and port.get("protocol", "tcp") == "tcp"]
    if not ports:
        raise serializers.ValidationError({"service": _("This service publishes no TCP port: give a URL instead, or publish one.")})
    host = endpoint_host(service.cluster)
    if service.cluster.kind == "swarm" or not host:
        host = host or "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{ports[0]['published']}{path}"


class LoadShapeParams(serializers.Serializer):
    """How hard and how long: the fields and bounds every load-test kind shares (labs reuse it)."""

    path = serializers.CharField(max_length=500, default="/", help_text=_("Path requested on the service."))
    method = serializers.ChoiceField(choices=["GET", "HEAD", "POST"], default="GET")
    concurrency = serializers.IntegerField(min_value=1, default=10)
    rate = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None, help_text=_("Requests per second in all (as fast as possible when empty)."))
    duration = serializers.IntegerField(min_value=1, default=30, help_text=_("Seconds."))
    expected_status = serializers.IntegerField(min_value=100, max_value=599, default=200)

    def validate_concurrency(self, value):
        if value > settings.LOADTEST_MAX_CONCURRENCY:
            raise serializers.ValidationError(_("At most %(n)d concurrent clients (FILROUGE_LOADTEST_MAX_CONCURRENCY).") % {"n": settings.LOADTEST_MAX_CONCURRENCY})
        return value

    def validate_rate(self, value):
        if value is not None and value > settings.LOADTEST_MAX_RATE:
            raise serializers.ValidationError(_("At most %(n)d requests per second (FILROUGE_LOADTEST_MAX_RATE).") % {"n": settings.LOADTEST_MAX_RATE})
        return value

    def validate_duration(self, value):
        if value > settings.LOADTEST_MAX_SECONDS:
            raise serializers.ValidationError(_("At most %(n)d seconds (FILROUGE_LOADTEST_MAX_SECONDS).") % {"n": settings.LOADTEST_MAX_SECONDS})
        return value

    def validate_path(self, value):
        if not value.startswith("/"):
            raise serializers.ValidationError(_("The path starts with /."))
        return value


class LoadTestParams(LoadShapeParams):
    service = serializers.IntegerField(required=False, allow_null=True, default=None, help_text=_("A service with a published port."))
    url = serializers.URLField(required=False, allow_blank=True, default="", help_text=_("Or a URL on a server or cluster of the inventory."))

    def validate(self, data):
        user = self.context.get("user")
        target = self.context.get("target")
        if data["service"] is None and isinstance(target, Service):
            data["service"] = target.pk
        if data["service"] is not None:
            service = Service.objects.visible_to(user).select_related("cluster").filter(pk=data["service"]).first() if user is not None else None
            if service is None:
                raise serializers.ValidationError({"service": _("No such service.")})
            data["url"] = service_url(service, data["path"])
            return data
        if not data["url"]:
            raise serializers.ValidationError({"url": _("Give a service or a URL.")})
        parts = urlsplit(data["url"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise serializers.ValidationError({"url": _("Give an http:// or https:// URL.")})
        host = parts.hostname.lower()
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            pass
        if host not in managed_hosts():
            raise serializers.ValidationError({"url": _("%(host)s is not the address of a server or cluster of the inventory: the panel only loads machines it manages.") % {"host": parts.hostname}})
        return data


@register
class LoadTest(JobKind):
    """Put a service or a URL on a managed machine under HTTP load and report every second."""

    name = "load-test"
    label = _("Load test")
    description = _("Send HTTP requests to a service for a while and chart requests/s, latency and errors.")
    queue = "default"
    permission = "is_operator"
    target_model = Service
    Params = LoadTestParams

    @property
    def timeout(self):
        return settings.LOADTEST_MAX_SECONDS + 120

    def describe(self, params):
        return f"{params.get('method', 'GET')} {params.get('url') or params.get('path')}"

    def run(self, ctx, service, url, path, method, concurrency, rate, duration, expected_status):
        service_obj = Service.objects.select_related("cluster").filter(pk=service).first() if service else None
        target_url, headers, ssl_context = url, None, None
        if url.startswith(f"{PROXY_SCHEME}://"):
            if service_obj is None or service_obj.cluster.kind != "kubernetes":
                raise JobFailed("The service is gone or no longer on Kubernetes: start the load test again.")
            from clusters.drivers import kubernetes as driver

            parts = urlsplit(url)
            head, _sep, rest = parts.path.lstrip("/").partition("/")
            port = head.partition(":")[2]
            base, headers, ssl_context = driver.service_proxy_target(service_obj.cluster, parts.hostname or service_obj.project,
                                                                     service_obj.name, port or None, ctx=ctx)
            target_url = f"{base}/{rest}"
            if parts.query:
                target_url += "?" + parts.query
        host = urlsplit(target_url).hostname
        server = Server.objects.filter(address=host).first() if service_obj is None else None
        labels = {"service": service_obj.name, "project": service_obj.project} if service_obj else {"target": url}
        owner = {"obj": service_obj} if service_obj else ({"obj": server} if server else {"object_type": "jobs"})
        hpa = HpaReader(ctx, service_obj) if service_obj and service_obj.cluster.kind == "kubernetes" else None

        def service_samples(labels):
            if service_obj is None:
                return []
            observed = Service.objects.filter(pk=service_obj.pk).values_list("observed", flat=True).first() or {}
            samples = [metrics.Sample("filrouge_service_replicas_running", observed.get("running") or 0, labels, obj=service_obj)]
            if hpa is not None:
                samples.extend(hpa.samples(labels))
            return samples

        if headers is not None:
            ctx.line("through the Kubernetes API server's service proxy (the API server's own limits apply)", host=host, task="engine")
        return run_load_test(ctx, target_url, method=method, concurrency=concurrency, rate=rate, duration=duration, expected_status=expected_status,
                             labels=labels, owner=owner, host=host, shown_url=url if target_url != url else None, extra_samples=service_samples,
                             headers=headers, ssl_context=ssl_context)


def _ms(value):
    return f"{value * 1000:.1f} ms" if value is not None else "–"


def run_load_test(ctx, url, *, method, concurrency, rate, duration, expected_status, labels, owner, host="", shown_url=None,
                  extra_samples=None, headers=None, ssl_context=None, engine="auto"):
    """The body of a load-test job, for every kind that loads something (labs/loadtest.py too):
    a log line and `filrouge_loadtest_*` samples (`labels`, on `owner`: {"obj": ...} or
    {"object_type": ...}) each second, the summary line, and JobFailed when every request failed.

    `shown_url` is what the lines say is loaded when `url` is only the way there (a tunnel);
    `extra_samples(labels)` adds samples recorded before the load and beside each second's; `headers`/`ssl_context` (an
    API server's proxy) and `engine="aiohttp"` keep the load in the Python engine, since wrk
    would carry a token on its command line."""
    ctx.line(
        f"{method} {shown_url or url}: {concurrency} clients, {f'{rate} requests/s' if rate else 'as fast as they can'}, {duration} s, expecting {expected_status}",
        host=host, task="load",
    )

    def on_second(figures):
        now = timezone.now()
        ctx.line(
            f"{figures['elapsed']:5.1f} s  {figures['rps']:7.1f} req/s  p50 {_ms(figures['p50'])}  p95 {_ms(figures['p95'])}  "
            f"p99 {_ms(figures['p99'])}  errors {figures['errors']}",
            host=host, task="load", outcome="ok" if not figures["errors"] else "failed",
        )
        samples = [
            metrics.Sample("filrouge_loadtest_requests_per_second", figures["rps"], labels, **owner),
            metrics.Sample("filrouge_loadtest_errors_per_second", figures["errors_per_second"], labels, **owner),
        ]
        for key in ("p50", "p95", "p99"):
            if figures[key] is not None:
                samples.append(metrics.Sample(f"filrouge_loadtest_latency_{key}_seconds", figures[key], labels, **owner))
        if extra_samples is not None:
            samples.extend(extra_samples(labels))
        metrics.record_many(samples, at=now)
        ctx.progress(min(duration, int(figures["elapsed"])), duration)

    if extra_samples is not None:
        # Where the replicas stood before the first request: the chart's starting point.
        metrics.record_many(extra_samples(labels), at=timezone.now())
    should_stop = lambda: ctx.cancelled.is_set() if hasattr(ctx, "cancelled") else False  # noqa: E731
    use_wrk = engine == "wrk" or (engine == "auto" and rate is None and 200 <= expected_status < 400 and not headers and ssl_context is None and wrk_available())
    if use_wrk:
        # As fast as it goes: wrk (C) keeps up with `ab`, where Python would measure itself.
        ctx.line("engine: wrk, one run per second", host=host, task="engine")
        result = run_wrk(url, method=method, concurrency=concurrency, duration=duration, on_second=on_second, should_stop=should_stop)
    else:
        ctx.line("engine: asyncio + aiohttp" + (f", paced at {rate} requests/s" if rate else ""), host=host, task="engine")
        secure = {key: value for key, value in (("headers", headers), ("ssl_context", ssl_context)) if value is not None}
        result = run_load(url, method=method, concurrency=concurrency, duration=duration, rate=rate, expected_status=expected_status,
                          on_second=on_second, should_stop=should_stop, **secure)
        result["engine"] = "aiohttp"
    ctx.line(
        f"{result['requests']} requests in {result['seconds']:.1f} s: {result['rps']:.1f} req/s, p50 {_ms(result['p50'])}, "
        f"p95 {_ms(result['p95'])}, p99 {_ms(result['p99'])}, {result['errors']} errors; statuses {result['statuses']}",
        host=host, task="summary", outcome="ok" if not result["errors"] else "failed",
    )
    # wrk does not count refused connections as requests: nothing reached is a failure too.
    if result["errors"] and result["errors"] >= result["requests"]:
        raise JobFailed(f"Every request failed: {'; '.join(result['error_examples'][:2])}")
    return result


class PeriodicReader(abc.ABC):
    """Figures sampled beside a load test (`extra_samples` of `run_load_test`): `read()` runs at
    most every `every` seconds (never per request) and its last answer, {metric name: value},
    is recorded each second with the load figures' labels, on `owner` ({"obj": ...}). A part
    that cannot be read is left out of the chart; `_tell` logs why once when `ctx_lines`."""

    def __init__(self, ctx, *, owner, ctx_lines=False, host="", every=HPA_EVERY):
        self.ctx, self.owner, self.ctx_lines, self.host, self.every = ctx, owner, ctx_lines, host, every
        self.last, self.cached, self.told = None, {}, set()

    def samples(self, labels):
        if self.last is None or time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            self.cached = self.read()
        return [metrics.Sample(name, value, labels, **self.owner) for name, value in self.cached.items()]

    @abc.abstractmethod
    def read(self):
        """{metric name: value} of what could be read now (a part that fails is left out)."""

    def reason(self, exc):
        return str(exc) or type(exc).__name__

    def _tell(self, what, exc):
        if self.ctx_lines and what not in self.told:
            self.told.add(what)
            self.ctx.line(f"{what} not charted: {self.reason(exc)}", host=self.host, task="replicas")


class ReplicaReader(PeriodicReader):
    """Replicas sampled beside a Kubernetes load test with whatever credential `connect()` gives
    (an ApiClient): the cluster's for an operator's service, a lab namespace's own kubeconfig
    for a teacher's lab load test (labs/loadtest.py).

    - `hpa_name`: read that HorizontalPodAutoscaler (the operators' kind: named as the service);
    - `service_name`: find the Deployment(s) whose pods the Service selects, record their ready
      replicas (`filrouge_service_replicas_running`, summed) and the HPAs that target them
      (`filrouge_service_hpa_current_replicas` / `_desired_replicas`, summed).

    A read that fails (no HPA, no Deployment, RBAC) leaves that line out, never fails the job."""

    def __init__(self, ctx, connect, namespace, *, owner, hpa_name=None, service_name=None, **kwargs):
        super().__init__(ctx, owner=owner, **kwargs)
        self.connect, self.namespace, self.hpa_name, self.service_name = connect, namespace, hpa_name, service_name

    def reason(self, exc):
        from clusters.drivers import kubernetes as driver

        return driver.status_message(exc) if hasattr(exc, "status") else super().reason(exc)

    def read(self):
        """{metric name: value} of what could be read now."""
        from kubernetes import client as kube_client

        try:
            api_client = self.connect()
        except Exception as exc:  # noqa: BLE001 - no credential: no replicas lines
            self._tell("replicas", exc)
            return {}
        figures = {}
        try:
            hpas = []
            if self.service_name:
                try:
                    selector = kube_client.CoreV1Api(api_client).read_namespaced_service(self.service_name, self.namespace).spec.selector or {}
                    deployments = [item for item in kube_client.AppsV1Api(api_client).list_namespaced_deployment(self.namespace).items
                                   if selector and selector.items() <= ((item.spec.template.metadata.labels or {}) if item.spec.template.metadata else {}).items()]
                except Exception as exc:  # noqa: BLE001 - RBAC, no such Service: no replicas line
                    self._tell("replicas", exc)
                    deployments = None
                if deployments:
                    figures["filrouge_service_replicas_running"] = sum(item.status.ready_replicas or 0 for item in deployments)
                    names = {item.metadata.name for item in deployments}
                    try:
                        hpas = [item for item in kube_client.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler(self.namespace).items
                                if item.spec.scale_target_ref.kind == "Deployment" and item.spec.scale_target_ref.name in names]
                    except Exception as exc:  # noqa: BLE001
                        self._tell("autoscaler", exc)
                    if not hpas:
                        self._tell("autoscaler", LookupError("no HorizontalPodAutoscaler targets " + ", ".join(sorted(names))))
                elif deployments is not None:
                    self._tell("replicas", LookupError(f"no Deployment's pods match service/{self.service_name}"))
            if self.hpa_name:
                try:
                    hpas = [kube_client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler(self.hpa_name, self.namespace)]
                except Exception as exc:  # noqa: BLE001 - no autoscaler (or no access): the chart just has no such line
                    self._tell("autoscaler", exc)
            statuses = [item.status for item in hpas if item.status]
            if statuses:
                figures["filrouge_service_hpa_current_replicas"] = sum(status.current_replicas or 0 for status in statuses)
                figures["filrouge_service_hpa_desired_replicas"] = sum(status.desired_replicas or 0 for status in statuses)
        finally:
            api_client.close()
        return figures


class HpaReader(ReplicaReader):
    """The autoscaler's current and desired replicas of an operator's service (its HPA is named
    as the service), with the cluster's credential, read at most every HPA_EVERY seconds."""

    def __init__(self, ctx, service):
        from clusters.drivers import kubernetes as driver

        super().__init__(ctx, lambda: driver.connect(service.cluster, ctx), service.project, owner={"obj": service}, hpa_name=service.name)
