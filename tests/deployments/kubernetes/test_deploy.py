"""Services on Kubernetes: deploy, roll out, fail with a reason, roll back, scale, restart,
remove. Jobs run in this process exactly as the worker runs them; the cluster is the
stand-in (or FILROUGE_TEST_KUBECONFIG's real cluster) through the official client."""

import base64

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from deployments import releases
from deployments.models import ReleaseStatus, Service, ServiceStatus

from tests.support.kube import both_credential_shapes
from tests.support.kube_jobs import deploy, failed, job_text, kube_service, split_image, succeeded

pytestmark = [pytest.mark.k8s, pytest.mark.django_db(transaction=True)]


def pods_of(api_client, namespace, service):
    return k8s.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=f"filrouge.service={service.pk}").items


def ready_images(api_client, namespace, service):
    return sorted(p.spec.containers[0].image for p in pods_of(api_client, namespace, service)
                  if p.status.container_statuses and all(c.ready for c in p.status.container_statuses) and not p.metadata.deletion_timestamp)


@both_credential_shapes
def test_it_deploys_a_service_and_follows_the_rollout_to_completion(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    job = succeeded(deploy(service, bob))

    text = job_text(job)
    assert f"applied Deployment {kube_target.namespace}/web" in text
    assert f"applied Service {kube_target.namespace}/web" in text
    assert "updated 2/2, ready 2/2, available 2/2" in text
    assert job.progress_done == job.progress_total == 6
    service.refresh_from_db()
    assert service.status == ServiceStatus.DEPLOYED and service.current_release.status == ReleaseStatus.DEPLOYED
    assert service.observed["desired"] == 2 and service.observed["healthy"] == 2
    assert all(row["node"] and row["release"] == "1" for row in service.observed["replicas"])
    api_client = kube_target.api_client()
    deployment = k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace)
    assert deployment.metadata.labels["app.kubernetes.io/managed-by"] == "filrouge"
    assert deployment.metadata.labels["filrouge.service"] == str(service.pk)
    assert deployment.metadata.labels["filrouge.release"] == "1"
    assert any(entry.manager == "filrouge" and entry.operation == "Apply" for entry in deployment.metadata.managed_fields)
    assert ready_images(api_client, kube_target.namespace, service) == [kube_target.image("1")] * 2
    kube_target.assert_no_secret_in(text)


def test_it_renders_every_kind_the_spec_asks_for(kube_target, bob):
    service = kube_service(
        kube_target, name="shop", replicas=1,
        ports=[{"container": 8080, "published": 30080}], service_type="NodePort",
        env={"MODE": "production"},
        config_files=[{"path": "/etc/shop/app.conf", "content": "threads = 4\n"}],
        secrets=[{"name": "DB_PASSWORD"}, {"name": "tls-key", "path": "/run/secrets/tls.key"}],
        volumes=[{"source": "uploads", "target": "/data", "size_mib": 512}],
        health_check={"type": "http", "path": "/index.html", "interval": 5, "timeout": 2, "retries": 3},
        resources={"cpu": 0.5, "memory_mib": 256, "cpu_request": 0.1, "memory_request_mib": 64},
        autoscaling={"min_replicas": 1, "max_replicas": 4, "cpu_target_percent": 60},
        ingress={"host": "shop.example.test", "path": "/", "tls_secret": "shop-tls"},
    )
    service.set_secrets({"DB_PASSWORD": "s3cret-db-pass", "tls-key": "-----KEY-----"})
    service.save()
    job = succeeded(deploy(service, bob))
    assert "s3cret-db-pass" not in job_text(job)

    api_client, ns = kube_target.api_client(), kube_target.namespace
    core, apps = k8s.CoreV1Api(api_client), k8s.AppsV1Api(api_client)
    container = apps.read_namespaced_deployment("shop", ns).spec.template.spec.containers[0]
    assert container.readiness_probe.http_get.path == "/index.html" and container.readiness_probe.http_get.port == 8080
    assert container.liveness_probe.http_get.path == "/index.html"
    assert container.resources.limits == {"cpu": "500m", "memory": "256Mi"}
    assert container.resources.requests == {"cpu": "100m", "memory": "64Mi"}
    assert {"name": "MODE", "value": "production"} in [{"name": e.name, "value": e.value} for e in container.env]
    assert any(e.name == "DB_PASSWORD" and e.value_from.secret_key_ref.name == "shop-secrets" for e in container.env)
    assert {m.mount_path for m in container.volume_mounts} == {"/etc/shop/app.conf", "/run/secrets/tls.key", "/data"}
    svc = core.read_namespaced_service("shop", ns)
    assert svc.spec.type == "NodePort" and svc.spec.ports[0].node_port == 30080 and svc.spec.ports[0].target_port == 8080
    assert core.read_namespaced_config_map("shop-config", ns).data == {"etc_shop_app.conf": "threads = 4\n"}
    secret = core.read_namespaced_secret("shop-secrets", ns)
    assert base64.b64decode(secret.data["DB_PASSWORD"]).decode() == "s3cret-db-pass"
    assert core.read_namespaced_persistent_volume_claim("shop-uploads", ns).spec.resources.requests["storage"] == "512Mi"
    ingress = k8s.NetworkingV1Api(api_client).read_namespaced_ingress("shop", ns)
    assert ingress.spec.rules[0].host == "shop.example.test" and ingress.spec.tls[0].secret_name == "shop-tls"
    assert ingress.spec.rules[0].http.paths[0].backend.service.port.number == 30080
    hpa = k8s.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler("shop", ns)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 4)
    assert hpa.spec.metrics[0].resource.target.average_utilization == 60


def test_a_missing_image_fails_with_image_pull_back_off_and_the_previous_release_keeps_serving(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))
    missing = kube_target.missing_image()
    repository, tag = split_image(missing)
    service.refresh_from_db()
    service.spec = {**service.spec, "image": repository}
    service.save()

    job = failed(deploy(service, bob, tag=tag))

    assert "ImagePullBackOff" in job.error or "ErrImagePull" in job.error
    assert missing in job.error
    assert "rolling back to revision 1" in job_text(job), job_text(job)
    service.refresh_from_db()
    assert service.status == ServiceStatus.FAILED and service.current_release.revision == 1
    assert service.releases.get(revision=2).status == ReleaseStatus.FAILED
    api_client = kube_target.api_client()
    assert ready_images(api_client, kube_target.namespace, service) == [kube_target.image("1")] * 2
    deployment = k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace)
    assert deployment.spec.template.spec.containers[0].image == kube_target.image("1")


def test_a_crash_looping_container_fails_the_rollout_with_its_name(kube_target, bob):
    service = kube_service(kube_target, replicas=1, update={"monitor": 3, "failure_action": "pause"})
    if kube_target.api is not None:
        kube_target.api.failing_images = [kube_target.image("1")]
        kube_target.api.failing_reason = "CrashLoopBackOff"
    else:
        service.spec = {**service.spec, "command": ["sh", "-c", "exit 3"]}
        service.save()

    job = failed(deploy(service, bob))

    assert "CrashLoopBackOff" in job.error and "container web" in job.error


def test_it_rolls_back_to_an_earlier_release(kube_target, bob):
    service = kube_service(kube_target, replicas=1)
    succeeded(deploy(service, bob))
    succeeded(deploy(service, bob, tag=split_image(kube_target.image("2"))[1]))
    api_client = kube_target.api_client()
    assert ready_images(api_client, kube_target.namespace, service) == [kube_target.image("2")]

    release, job = releases.rollback(service, bob, 1)
    job = succeeded(job)

    assert release.revision == 3 and release.rollback_of.revision == 1
    assert kube_target.wait_for(lambda: ready_images(api_client, kube_target.namespace, service) == [kube_target.image("1")], message="only image 1 ready")
    deployment = k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace)
    assert deployment.metadata.labels["filrouge.release"] == "3"


def test_it_scales_and_keeps_the_count_for_the_next_deploy(kube_target, bob):
    service = kube_service(kube_target, replicas=1)
    succeeded(deploy(service, bob))

    job = succeeded(releases.act(service, bob, "service-scale", {"replicas": 3}))

    assert "updated 3/3, ready 3/3, available 3/3" in job_text(job)
    api_client = kube_target.api_client()
    assert k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace).spec.replicas == 3
    service.refresh_from_db()
    assert service.spec["replicas"] == 3 and service.observed["healthy"] == 3


def test_it_restarts_every_pod(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))
    api_client = kube_target.api_client()
    before = {p.metadata.name for p in pods_of(api_client, kube_target.namespace, service)}

    job = succeeded(releases.act(service, bob, "service-restart"))

    assert "restart requested" in job_text(job)
    deployment = k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace)
    assert "kubectl.kubernetes.io/restartedAt" in deployment.spec.template.metadata.annotations
    after = kube_target.wait_for(lambda: {p.metadata.name for p in pods_of(api_client, kube_target.namespace, service) if not p.metadata.deletion_timestamp} - before, message="new pods")
    assert len(after) == 2
    # The next deploy applies as the field manager "filrouge" and does not fight the restart annotation.
    succeeded(deploy(service, bob))


def test_remove_deletes_everything_of_the_service_and_nothing_else(kube_target, bob):
    service = kube_service(kube_target, replicas=1, config_files=[{"path": "/etc/app.conf", "content": "x"}])
    other = kube_service(kube_target, name="other", replicas=1)
    succeeded(deploy(service, bob))
    succeeded(deploy(other, bob))
    api_client = kube_target.api_client()
    core = k8s.CoreV1Api(api_client)
    core.create_namespaced_config_map(kube_target.namespace, {"metadata": {"name": "hand-made"}, "data": {"a": "b"}})

    job = succeeded(releases.act(service, bob, "service-remove"))

    assert "removed 3 object(s)" in job_text(job)
    names = {c.metadata.name for c in core.list_namespaced_config_map(kube_target.namespace).items}
    assert "hand-made" in names and "web-config" not in names
    apps = k8s.AppsV1Api(api_client)
    assert [d.metadata.name for d in apps.list_namespaced_deployment(kube_target.namespace).items] == ["other"]
    assert [s.metadata.name for s in core.list_namespaced_service(kube_target.namespace).items] == ["other"]
    assert Service.objects.get(pk=service.pk).status == ServiceStatus.REMOVED


def test_a_new_release_without_an_ingress_removes_the_old_one(kube_target, bob):
    service = kube_service(kube_target, replicas=1, ingress={"host": "a.example.test"})
    succeeded(deploy(service, bob))
    service.refresh_from_db()
    service.spec = {**service.spec, "ingress": None}
    service.save()

    job = succeeded(deploy(service, bob))

    assert f"deleted Ingress {kube_target.namespace}/web" in job_text(job)
    assert k8s.NetworkingV1Api(kube_target.api_client()).list_namespaced_ingress(kube_target.namespace).items == []


def test_it_creates_the_namespace_of_a_new_project(kube_target, bob):
    namespace = f"{kube_target.namespace}-new"
    service = kube_service(kube_target, replicas=1)
    Service.objects.filter(pk=service.pk).update(project=namespace)
    service.refresh_from_db()
    core = k8s.CoreV1Api(kube_target.api_client())
    try:
        job = succeeded(deploy(service, bob))
        assert f"created namespace {namespace}" in job_text(job)
        assert core.read_namespace(namespace).metadata.labels["app.kubernetes.io/managed-by"] == "filrouge"
    finally:
        try:
            core.delete_namespace(namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_stop_scales_to_zero_and_keeps_the_objects(kube_target, bob):
    service = kube_service(kube_target, replicas=2)
    succeeded(deploy(service, bob))

    succeeded(releases.act(service, bob, "service-stop"))

    api_client = kube_target.api_client()
    assert k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace).spec.replicas == 0
    kube_target.wait_for(lambda: not [p for p in pods_of(api_client, kube_target.namespace, service) if not p.metadata.deletion_timestamp], message="no running pod left")
    assert k8s.CoreV1Api(api_client).read_namespaced_service("web", kube_target.namespace).metadata.labels["filrouge.service"] == str(service.pk)
    service.refresh_from_db()
    assert service.status == ServiceStatus.STOPPED


def test_an_autoscaled_service_is_not_scaled_by_hand_and_stopping_it_removes_its_autoscaler(kube_target, bob):
    service = kube_service(kube_target, replicas=1, autoscaling={"min_replicas": 1, "max_replicas": 3})
    succeeded(deploy(service, bob))

    job = failed(releases.act(service, bob, "service-scale", {"replicas": 2}))
    assert "is autoscaled" in job.error and "autoscaling bounds" in job.error

    succeeded(releases.act(service, bob, "service-stop"))
    api_client = kube_target.api_client()
    assert k8s.AutoscalingV2Api(api_client).list_namespaced_horizontal_pod_autoscaler(kube_target.namespace).items == []
    assert k8s.AppsV1Api(api_client).read_namespaced_deployment("web", kube_target.namespace).spec.replicas == 0
