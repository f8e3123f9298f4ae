"""Checking what a person gives to add a Kubernetes cluster, for the page and the API alike.

Two ways in:
- a kubeconfig (uploaded or pasted): parsed here, its contexts listed so the person can
  choose one; stored whole, encrypted, in a Credential of kind `kubeconfig`;
- an API URL, a bearer token and the cluster's CA: stored in a Credential of kind
  `kube-token` (the URL is the cluster's endpoint).

An http:// API URL sends the token in clear: refused unless the person says so
explicitly (`allow_insecure_http`). Nothing here talks to the cluster: the connect test
job does, once the cluster is saved.
"""

import uuid

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from clusters.models import Cluster, Credential
from panel.lib import safe_yaml


def parse_kubeconfig_text(text):
    """The kubeconfig dict; ValidationError naming line and column for bad YAML."""
    if not text or not text.strip():
        raise ValidationError(_("Paste or upload a kubeconfig."))
    try:
        data = safe_yaml.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ValidationError(_("The kubeconfig is not valid YAML: line %(line)s, column %(column)s: %(problem)s.") % {
            "line": mark.line + 1 if mark else "?", "column": mark.column + 1 if mark else "?", "problem": exc.problem or exc}) from None
    except yaml.YAMLError as exc:
        raise ValidationError(_("The kubeconfig is not valid YAML: %(error)s.") % {"error": exc}) from None
    if not isinstance(data, dict) or data.get("kind", "Config") != "Config":
        raise ValidationError(_("This is not a kubeconfig (a YAML document of kind Config with clusters, users and contexts)."))
    for key in ("clusters", "contexts", "users"):
        if not isinstance(data.get(key), list) or not data.get(key):
            raise ValidationError(_("The kubeconfig has no %(key)s.") % {"key": key})
    return data


def kubeconfig_contexts(data):
    """[{name, cluster, server, user, namespace}] of a parsed kubeconfig, and its current context."""
    servers = {item.get("name"): (item.get("cluster") or {}).get("server", "") for item in data.get("clusters") or [] if isinstance(item, dict)}
    rows = []
    for item in data.get("contexts") or []:
        if not isinstance(item, dict):
            continue
        context = item.get("context") or {}
        rows.append({"name": str(item.get("name", "")), "cluster": context.get("cluster", ""), "server": servers.get(context.get("cluster"), ""),
                     "user": context.get("user", ""), "namespace": context.get("namespace") or "default"})
    return rows, str(data.get("current-context") or "")


def check_api_url(url, allow_insecure_http, field):
    if url.startswith("https://") and len(url) > len("https://"):
        return
    if url.startswith("http://") and len(url) > len("http://"):
        if not allow_insecure_http:
            raise ValidationError({field: _("%(url)s is plain http://: the token would travel in clear. Use https://, or tick 'allow insecure http' if this is a local test cluster.") % {"url": url}})
        return
    raise ValidationError({field: _("Give the API server's URL, e.g. https://api.example:6443 (got %(url)r).") % {"url": url}})


def check_ca(ca_pem):
    if not ca_pem.strip():
        return
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(ca_pem.strip().encode())
    except ValueError:
        raise ValidationError({"ca_cert": _("The CA certificate is not a PEM certificate (-----BEGIN CERTIFICATE----- ...).")}) from None


def validate_kubeconfig_input(kubeconfig, context="", allow_insecure_http=False):
    """(kubeconfig text, chosen context name, its row) or ValidationError keyed by field."""
    try:
        data = parse_kubeconfig_text(kubeconfig)
    except ValidationError as exc:
        raise ValidationError({"kubeconfig": exc.messages}) from None
    rows, current = kubeconfig_contexts(data)
    names = [row["name"] for row in rows]
    if context:
        if context not in names:
            raise ValidationError({"context": _("The kubeconfig has no context %(context)r; it has: %(names)s.") % {"context": context, "names": ", ".join(names)}})
    elif len(names) == 1:
        context = names[0]
    elif current in names:
        context = current
    else:
        raise ValidationError({"context": _("The kubeconfig has several contexts and no current one: choose one of %(names)s.") % {"names": ", ".join(names)}})
    row = next(item for item in rows if item["name"] == context)
    if not row["server"]:
        raise ValidationError({"context": _("Context %(context)s names cluster %(cluster)r, which the kubeconfig does not define (or has no server).") % {"context": context, "cluster": row["cluster"]}})
    users = {item.get("name") for item in data.get("users") or [] if isinstance(item, dict)}
    if row["user"] not in users:
        raise ValidationError({"context": _("Context %(context)s names user %(user)r, which the kubeconfig does not define.") % {"context": context, "user": row["user"]}})
    check_api_url(row["server"], allow_insecure_http, "kubeconfig")
    return kubeconfig.strip().replace("\r\n", "\n") + "\n", context, row


def _credential_name(cluster_name, suffix):
    name = f"{cluster_name}-{suffix}"
    if Credential.objects.filter(name=name).exists():
        name = f"{name}-{uuid.uuid4().hex[:6]}"
    return name


def create_kube_cluster(user, name, kubeconfig="", context="", endpoint="", token="", ca_cert="", allow_insecure_http=False, default_namespace=""):
    """Validate, then save the Credential and the Cluster in one transaction. Returns the cluster."""
    errors = {}
    if not name:
        errors["name"] = [_("Give the cluster a name.")]
    elif Cluster.objects.filter(name=name).exists():
        errors["name"] = [_("A cluster with this name exists already.")]
    if kubeconfig and (endpoint or token):
        errors["__all__"] = [_("Give either a kubeconfig, or an API URL with a token, not both.")]
    if errors:
        raise ValidationError(errors)
    if kubeconfig:
        text, context, row = validate_kubeconfig_input(kubeconfig, context, allow_insecure_http)
        kind, secret, endpoint = "kubeconfig", {"kubeconfig": text}, row["server"]
        default_namespace = default_namespace or row["namespace"]
    else:
        if not endpoint:
            raise ValidationError({"endpoint": _("Give the API server's URL, or a kubeconfig instead.")})
        check_api_url(endpoint, allow_insecure_http, "endpoint")
        if not token:
            raise ValidationError({"token": _("Give the bearer token of the account the panel acts as.")})
        check_ca(ca_cert)
        kind, secret, context = "kube-token", {"token": token.strip(), "ca_cert": ca_cert.strip() + ("\n" if ca_cert.strip() else "")}, ""
    with transaction.atomic():
        credential = Credential(name=_credential_name(name, "kubeconfig" if kind == "kubeconfig" else "token"), kind=kind,
                                created_by=user if getattr(user, "pk", None) else None, description=_("Made when cluster %(name)s was added.") % {"name": name})
        credential.set_secret(secret)
        credential.save()
        return Cluster.objects.create(name=name, kind="kubernetes", endpoint=endpoint, credential=credential, context=context,
                                      default_namespace=default_namespace or "default")
