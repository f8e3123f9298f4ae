"""Validation against the cluster's discovery: refused before anything is sent."""

import pytest

from clusters.kubernetes.manifests import Discovery, ManifestInvalid, load_and_validate, parse_documents, validate

HPA_V2BETA2 = """\
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
"""


def refused(api_client, text, namespace):
    with pytest.raises(ManifestInvalid) as caught:
        load_and_validate(api_client, [("app.yaml", text)], namespace)
    return caught.value


def test_it_refuses_an_autoscaling_v2beta2_hpa_naming_autoscaling_v2(kube_target):
    error = refused(kube_target.api_client(), HPA_V2BETA2, kube_target.namespace)
    assert error.problems == [
        "app.yaml, document 1 (line 1): HorizontalPodAutoscaler 'web' uses apiVersion autoscaling/v2beta2, which this cluster "
        "does not serve (removed in Kubernetes 1.26). Use apiVersion: autoscaling/v2 instead (check the fields that changed between the versions)."
    ]
    assert "nothing was sent" in str(error)


def test_it_refuses_an_extensions_v1beta1_ingress_naming_networking_v1(kube_target):
    text = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\nspec: {}\n"
    assert "Use apiVersion: networking.k8s.io/v1 instead" in refused(kube_target.api_client(), text, kube_target.namespace).problems[0]


def test_it_refuses_an_unknown_kind_and_suggests_the_close_one(kube_target):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    problems = refused(kube_target.api_client(), text, kube_target.namespace).problems
    assert problems[0] == "app.yaml, document 2 (line 5): this cluster does not serve kind Deploymnet in apps/v1. Did you mean kind: Deployment?"
    assert problems[1] == "app.yaml, document 3 (line 9): Widget 'w' uses apiVersion example.com/v1, which this cluster does not serve."


def test_it_refuses_a_conflicting_namespace_and_fills_in_the_chosen_one(kube_target):
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: production}\n"
    problems = refused(kube_target.api_client(), text, kube_target.namespace).problems
    assert f"says metadata.namespace 'production' but the chosen namespace is '{kube_target.namespace}'" in problems[0]
    objects, _ = load_and_validate(kube_target.api_client(), [("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")], kube_target.namespace)
    assert objects[0].body["metadata"]["namespace"] == kube_target.namespace
    assert objects[0].path() == f"/api/v1/namespaces/{kube_target.namespace}/configmaps/a"


def test_it_sends_nothing_when_one_document_is_refused(kube_target):
    kube_target.require_standin("the stand-in's request log")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" + HPA_V2BETA2
    kube_target.api.reset_request_log()
    refused(kube_target.api_client(), text, kube_target.namespace)
    methods = {method for method, _path in kube_target.api.request_log}
    assert methods == {"GET"}


def test_discovery_costs_the_same_few_requests_for_1_or_100_objects(kube_target):
    api_client = kube_target.api_client()

    def requests_for(count):
        text = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d{i}}}\n" for i in range(count))
        discovery = Discovery(api_client)
        validate(parse_documents([("many.yaml", text)]), discovery, kube_target.namespace)
        return discovery.requests

    assert requests_for(1) == requests_for(100) == 4  # /api, /apis, /api/v1, /apis/apps/v1


def test_a_yaml_error_in_one_file_does_not_hide_the_other_files_problems(kube_target):
    sources = [("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n"),
               ("old.yaml", HPA_V2BETA2),
               ("nameless.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")]
    with pytest.raises(ManifestInvalid) as caught:
        load_and_validate(kube_target.api_client(), sources, kube_target.namespace)
    problems = caught.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("broken.yaml, document 1:") and "line" in problems[0]
    assert any(problem.startswith("nameless.yaml, document 1") for problem in problems)
    assert any(problem.startswith("old.yaml, document 1 (line 1): HorizontalPodAutoscaler 'web' uses apiVersion autoscaling/v2beta2") for problem in problems)
