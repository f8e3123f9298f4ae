"""Where the probe sends each service's health check (deployments/probe.py), from the engine's
list rows and the service's spec; the checks themselves run against a real engine in
tests/clusters/docker/test_engine.py."""

import pytest

from clusters.models import Cluster, Server
from deployments.models import Service
from deployments.probe import engine_address, health_check_urls
from deployments.spec import normalize_spec

pytestmark = pytest.mark.django_db


def service_with(name="web", **spec):
    cluster, _ = Cluster.objects.get_or_create(name="engine", kind="docker", endpoint="unix:///var/run/docker.sock")
    return Service.objects.create(name=name, cluster=cluster, project="shop", spec=normalize_spec({"image": "web", "tag": "1", **spec}))


def row(ports, state="running"):
    return {"state": state, "ports": ports}


def test_each_running_replica_is_checked_on_its_published_port_with_the_health_checks_path():
    service = service_with(ports=[{"container": 8080}], health_check={"type": "http", "port": 8080, "path": "healthz"})
    rows = [row(["0.0.0.0:32768->8080/tcp", "9090/tcp"]), row(["127.0.0.1:32769->8080/tcp"]), row([], state="exited"), row(["0.0.0.0:32770->8080/tcp"], state="exited")]

    assert health_check_urls(service, rows, "127.0.0.1") == ["http://127.0.0.1:32768/healthz", "http://127.0.0.1:32769/healthz"]


def test_without_a_health_check_the_first_tcp_port_answers_at_the_root_and_a_command_check_is_the_engines():
    plain = service_with(ports=[{"container": 80, "protocol": "udp"}, {"container": 8080}])
    assert health_check_urls(plain, [row(["[::]:40000->8080/tcp"])], "10.0.0.5") == ["http://10.0.0.5:40000/"]
    command = service_with(name="checked-inside", ports=[{"container": 8080}], health_check={"type": "command", "command": ["true"]})
    assert health_check_urls(command, [row(["0.0.0.0:40000->8080/tcp"])], "127.0.0.1") == []


def test_a_remote_engines_loopback_is_not_reachable_and_a_swarm_service_answers_on_its_published_port():
    service = service_with(ports=[{"container": 8080, "published": 8081}])
    assert health_check_urls(service, [row(["127.0.0.1:32768->8080/tcp"])], "10.0.0.5") == []
    assert health_check_urls(service, [], "10.0.0.5", swarm=True) == ["http://10.0.0.5:8081/"]


def test_the_engines_address_comes_from_its_endpoint_or_its_server():
    server = Server.objects.create(name="docker01", address="192.0.2.7")
    assert engine_address(Cluster(endpoint="unix:///var/run/docker.sock")) == "127.0.0.1"
    assert engine_address(Cluster(endpoint="tcp://192.0.2.8:2376")) == "192.0.2.8"
    assert engine_address(Cluster(endpoint="ssh://docker01", server=server)) == "192.0.2.7"


def test_a_kubernetes_service_is_checked_on_the_service_port_of_its_health_check():
    from deployments.backends.kubernetes.probe import health_check_target

    cluster = Cluster.objects.create(name="kube", kind="kubernetes")

    def kube(name, **spec):
        return Service.objects.create(name=name, cluster=cluster, project="shop", spec=normalize_spec({"image": "web", "tag": "1", **spec}))

    assert health_check_target(kube("plain", ports=[{"container": 8080, "published": 80}, {"container": 9090}])) == ("tcp-8080", "/")
    assert health_check_target(kube("checked", ports=[{"container": 8080}, {"container": 9090}],
                                    health_check={"type": "http", "port": 9090, "path": "healthz"})) == ("tcp-9090", "/healthz")
    assert health_check_target(kube("default-port", ports=[{"container": 8080}], health_check={"type": "http", "path": "/ready"})) == ("tcp-8080", "/ready")
    assert health_check_target(kube("unexposed", ports=[{"container": 8080}], health_check={"type": "http", "port": 8081})) is None
    assert health_check_target(kube("inside", ports=[{"container": 8080}], health_check={"type": "command", "command": ["true"]})) is None
    assert health_check_target(kube("no-service", ports=[])) is None


def test_a_failed_answer_gives_the_kubernetes_status_message_as_its_reason():
    from clusters.drivers.http import error_reason

    body = b'{"kind":"Status","status":"Failure","message":"no endpoints available for service \\"web\\"","reason":"ServiceUnavailable","code":503}'
    assert error_reason(503, "application/json", body) == 'HTTP 503: no endpoints available for service "web"'
    assert error_reason(500, "text/html", b"<html>oops</html>") == "HTTP 500"
    assert error_reason(502, "application/json", b"{not json") == "HTTP 502"
