"""Subresources and review APIs: ``deployments/scale`` (and replicasets),
``pods/log`` (with follow), ``pods/eviction``, ``serviceaccounts/token``
(TokenRequest), ``namespaces/finalize``, and the create-only review kinds
(SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
SelfSubjectRulesReview, TokenReview, SelfSubjectReview).
"""

from __future__ import annotations

from .apply import record_update
from .errors import ApiError, bad_request, conflict, field_error, invalid, not_found
from .meta import clone, dig, rfc3339
from .patches import json_patch, merge_patch, strategic_merge
from .resources import BY_KEY


def selector_string(sel):
    parts = [f"{k}={v}" for k, v in sorted((sel or {}).get("matchLabels", {}).items())]
    for e in (sel or {}).get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(sorted(e.get("values") or []))
        parts.append({"In": f"{key} in ({vals})", "NotIn": f"{key} notin ({vals})",
                      "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(sorted(parts))


class Subresources:
    def __init__(self, api):
        self.api = api
        self.registry = api.registry
        self.store = api.store
        self.standin = api.standin

    def dispatch(self, req, rtype, version, ns, name, sub):
        from .rest import Response
        if sub == "scale":
            return Response(200, self._scale(req, rtype, ns, name))
        if sub == "log":
            return self._log(req, ns, name)
        if sub == "exec":
            from .podexec import prepare
            response = Response(101, None)
            response.upgrade = prepare(self.store, req, ns, name)
            return response
        if sub == "token":
            return Response(201, self._token(req, ns, name))
        if sub == "eviction":
            self.registry.delete(rtype, ns, name)
            return Response(201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "code": 201})
        if sub == "finalize":
            body = req.parsed_body() or {}
            current = self.registry.get(rtype, "", name)
            current.setdefault("spec", {})["finalizers"] = dig(body, "spec", "finalizers", default=[]) or []
            return Response(200, self.registry.write_internal(self.registry.get(rtype, "", name), current,
                                                              req.manager(), "finalize"))
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # --- scale ---------------------------------------------------------------------------------
    def _scale_of(self, obj):
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"],
                             "creationTimestamp": meta["creationTimestamp"]},
                "spec": {"replicas": dig(obj, "spec", "replicas", default=1)},
                "status": {"replicas": dig(obj, "status", "replicas", default=0),
                           "selector": selector_string(dig(obj, "spec", "selector"))}}

    def _scale(self, req, rtype, ns, name):
        with self.store.lock:
            obj = self.registry.get(rtype, ns, name)
            scale = self._scale_of(obj)
            if req.method == "GET":
                return scale
            body = req.parsed_body()
            if req.method == "PUT":
                new_scale = body
            else:
                ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
                if "json-patch" in ctype:
                    new_scale = json_patch(scale, body)
                elif "strategic" in ctype:
                    new_scale = strategic_merge(scale, body)
                else:
                    new_scale = merge_patch(scale, body)
            if not isinstance(new_scale, dict):
                raise bad_request("the body of the request was in an unknown format")
            rv = dig(new_scale, "metadata", "resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise conflict(rtype.plural, rtype.group, name)
            replicas = dig(new_scale, "spec", "replicas", default=0)
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid("Scale", "autoscaling", name, [field_error(
                    "Invalid", "spec.replicas", "must be greater than or equal to 0", replicas)])
            new = clone(obj)
            new["spec"]["replicas"] = replicas
            if replicas == obj["spec"].get("replicas") or req.dry_run:
                return self._scale_of(new)
            if rtype.generation:
                new["metadata"]["generation"] = obj["metadata"].get("generation", 1) + 1
            record_update(obj, new, req.manager(), rtype.api_version(), "scale", rtype.has_status)
            return self._scale_of(self.store.put(rtype.key, new))

    # --- logs ----------------------------------------------------------------------------------
    def _log(self, req, ns, name):
        from .rest import Response
        pod = self.store.get("/pods", ns, name)
        if pod is None:
            raise not_found("pods", "", name)
        names = [c["name"] for c in dig(pod, "spec", "containers", default=[])]
        container = req.q("container")
        if not container:
            if len(names) != 1:
                raise bad_request(f"a container name must be specified for pod {name}, choose one of: "
                                  f"[{' '.join(names)}]")
            container = names[0]
        elif container not in names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        status = next((s for s in dig(pod, "status", "containerStatuses", default=[]) or []
                       if s.get("name") == container), None)
        waiting = dig(status, "state", "waiting", "reason") if status else "ContainerCreating"
        if waiting and waiting != "CrashLoopBackOff":
            text = {"ImagePullBackOff": "trying and failing to pull image",
                    "ErrImagePull": "image can't be pulled"}.get(waiting, waiting)
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {text}')
        tail, since = req.q_int("tailLines"), req.q_int("sinceSeconds")
        stamps, limit = req.q_bool("timestamps"), req.q_int("limitBytes")
        logs = self.standin.logs
        if req.q_bool("follow"):
            uid = pod["metadata"]["uid"]

            def still_there():
                p = self.store.peek("/pods", ns, name)
                return p is not None and p["metadata"]["uid"] == uid
            return Response(200, None, "text/plain", stream=logs.follow(ns, name, container, still_there,
                                                                         tail, since, stamps))
        return Response(200, logs.read(ns, name, container, tail, since, stamps, limit), "text/plain")

    # --- TokenRequest --------------------------------------------------------------------------
    def _token(self, req, ns, name):
        sa = self.registry.get(BY_KEY["/serviceaccounts"], ns, name)
        body = req.parsed_body() or {}
        spec = body.get("spec") or {}
        seconds = spec.get("expirationSeconds", 3600)
        if not isinstance(seconds, int) or seconds < 600:
            raise invalid("TokenRequest", "authentication.k8s.io", name, [field_error(
                "Invalid", "spec.expirationSeconds", "may not specify a duration less than 10 minutes", seconds)])
        if seconds > 2**32:
            raise invalid("TokenRequest", "authentication.k8s.io", name, [field_error(
                "TooLong", "spec.expirationSeconds", "may not specify a duration larger than 2^32 seconds", seconds)])
        audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
        bound = None
        ref = spec.get("boundObjectRef")
        if ref:
            key = {"Pod": "/pods", "Secret": "/secrets", "Node": "/nodes"}.get(ref.get("kind"))
            if key is None:
                raise bad_request(f'cannot bind token to object of type {ref.get("kind")}')
            target = self.store.get(key, "" if key == "/nodes" else ns, ref.get("name", ""))
            if target is None or (ref.get("uid") and ref["uid"] != target["metadata"]["uid"]):
                raise not_found(key.strip("/"), "", ref.get("name", ""))
            bound = (key, "" if key == "/nodes" else ns, ref["name"], target["metadata"]["uid"])
        token, exp = self.standin.authn.issue_sa_token(ns, name, sa["metadata"]["uid"], seconds, audiences, bound)
        out_spec = {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": ref}
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": rfc3339()},
                "spec": out_spec, "status": {"token": token, "expirationTimestamp": rfc3339(exp)}}

    # --- review APIs ---------------------------------------------------------------------------
    def review(self, req, rtype, version, ns):
        from .auth import Identity
        from .rest import Response
        body = req.parsed_body() or {}
        spec = body.get("spec") or {}
        kind = rtype.kind
        out = {"kind": kind, "apiVersion": rtype.api_version(version),
               "metadata": {"creationTimestamp": None, **({"namespace": ns} if ns else {})}, "spec": spec}
        if kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
            who = req.identity
            if kind != "SelfSubjectAccessReview":
                who = Identity(spec.get("user", ""), tuple(spec.get("groups") or []), spec.get("uid", ""))
            attrs = self._attrs(spec)
            if kind == "LocalSubjectAccessReview" and attrs.get("namespace", ns) != ns:
                raise bad_request("spec.resourceAttributes.namespace must match metadata.namespace")
            if kind == "LocalSubjectAccessReview":
                attrs["namespace"] = ns
            allowed = self.api.authorizer.allowed(who, attrs)
            out["status"] = {"allowed": allowed}
            if not allowed:
                out["status"]["denied"] = False
        elif kind == "SelfSubjectRulesReview":
            rules = self.api.authorizer.rules_for(req.identity, spec.get("namespace"))
            if "system:masters" in req.identity.groups:
                rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                         {"verbs": ["*"], "nonResourceURLs": ["*"]}]
            out["status"] = {
                "resourceRules": [{k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if k in r}
                                  for r in rules if "nonResourceURLs" not in r],
                "nonResourceRules": [{"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                                     for r in rules if "nonResourceURLs" in r],
                "incomplete": False}
        elif kind == "TokenReview":
            who = self.standin.authn.authenticate(spec.get("token", ""), self.store)
            out["status"] = {"authenticated": who is not None}
            if who is not None:
                out["status"]["user"] = who.as_user_info()
                out["status"]["audiences"] = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
        elif kind == "SelfSubjectReview":
            out["status"] = {"userInfo": req.identity.as_user_info()}
            out.pop("spec")
        return Response(201, out)

    @staticmethod
    def _attrs(spec):
        nra = spec.get("nonResourceAttributes")
        if nra:
            return {"verb": nra.get("verb", ""), "path": nra.get("path", "")}
        ra = spec.get("resourceAttributes") or {}
        return {"verb": ra.get("verb", ""), "group": ra.get("group", ""), "resource": ra.get("resource", ""),
                "subresource": ra.get("subresource", ""), "name": ra.get("name", ""),
                "namespace": ra.get("namespace", "")}
