"""manage.py apply_manifests: validate-only, dry run, apply, and the exit status of a refusal."""

import io

import pytest
from django.core.management import CommandError, call_command
from kubernetes import client as k8s

from tests.clusters.kubernetes.conftest import API_POC, api_poc_sources

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args):
    out = io.StringIO()
    call_command("apply_manifests", *args, stdout=out)
    return out.getvalue()


def poc_dir(kube_target, tmp_path):
    if kube_target.is_standin:
        return str(API_POC)
    for name, text in api_poc_sources(kube_target):
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def test_it_validates_only_and_sends_nothing(kube_target, tmp_path):
    out = run(poc_dir(kube_target, tmp_path), "--cluster", kube_target.cluster.name, "--namespace", kube_target.namespace, "--validate-only")
    assert "Valid: 4 object(s)" in out
    assert f"Deployment/api-poc (apps/v1) in {kube_target.namespace}" in out
    assert k8s.AppsV1Api(kube_target.api_client()).list_namespaced_deployment(kube_target.namespace).items == []


def test_it_prints_the_dry_run_diff_and_changes_nothing(kube_target, tmp_path):
    out = run(poc_dir(kube_target, tmp_path), "--cluster", kube_target.cluster.name, "--namespace", kube_target.namespace, "--dry-run")
    assert "Dry run: 4 to create, 0 to change, 0 unchanged" in out
    assert "+++ applied/ConfigMap/" in out and "+  BURN_SECONDS: '180'" in out
    assert k8s.CoreV1Api(kube_target.api_client()).list_namespaced_config_map(kube_target.namespace, label_selector="app=api-poc").items == []


def test_it_applies_and_prints_the_applied_objects_and_rollout(kube_target, tmp_path):
    out = run(poc_dir(kube_target, tmp_path), "--cluster", kube_target.cluster.name, "--namespace", kube_target.namespace, "--rollout-timeout", "120")
    assert "Applied 4 object(s):" in out
    assert "  Deployment/api-poc created" in out
    assert "rollout of Deployment/api-poc: complete" in out
    assert k8s.AppsV1Api(kube_target.api_client()).read_namespaced_deployment("api-poc", kube_target.namespace).status.ready_replicas == 2


def test_a_refusal_exits_non_zero_with_the_reason(kube_target, tmp_path):
    bad = tmp_path / "hpa.yaml"
    bad.write_text("apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n")
    with pytest.raises(CommandError) as caught:
        run(str(bad), "--cluster", kube_target.cluster.name, "--namespace", kube_target.namespace)
    assert "failed" in str(caught.value) and "Use apiVersion: autoscaling/v2 instead" in str(caught.value)
    assert caught.value.returncode == 1


def test_it_refuses_an_unknown_cluster(db):
    with pytest.raises(CommandError, match="No Kubernetes cluster named 'nowhere'"):
        run(str(API_POC), "--cluster", "nowhere", "--namespace", "x")
