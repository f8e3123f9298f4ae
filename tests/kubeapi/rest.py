"""The REST API: turns an authenticated HTTP request into discovery, CRUD,
watch or subresource calls, with RBAC authorization on the real request
attributes (verb, API group, resource, subresource, name, namespace).

Responses follow the API conventions: list kinds with ``metadata.
resourceVersion`` (and ``continue`` with ``limit``), items without
``apiVersion``/``kind``, 201 on create, ``Status`` on errors, and watches as
newline-delimited JSON events.
"""

from __future__ import annotations

import base64
import json
import time

import yaml

from . import discovery
from .appload import METRICS_GROUP, METRICS_VERSION
from .errors import ApiError, bad_request, method_not_allowed
from .meta import truthy
from .rbac import RBAC, check_escalation, denial
from .resources import deprecation_warning, lookup, to_version
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from .subresources import Subresources

NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource", {})
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")


class Response:
    def __init__(self, code=200, body=None, content_type="application/json", stream=None, headers=None):
        self.code, self.body, self.content_type = code, body, content_type
        self.stream, self.headers = stream, headers or {}


class Request:
    def __init__(self, method, path, query, headers, body, identity=None):
        self.method, self.path, self.query = method, path, query
        self.headers, self.body, self.identity = headers, body, identity

    def q(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def q_bool(self, name):
        return truthy(self.q(name, "false"))

    def q_int(self, name):
        value = self.q(name)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except ValueError:
            raise bad_request(f'invalid value for {name}: "{value}"')

    @property
    def dry_run(self):
        return "All" in (self.query.get("dryRun") or [])

    def manager(self):
        name = self.q("fieldManager")
        if name:
            return name
        agent = self.headers.get("User-Agent", "") or "unknown"
        return agent.split("/")[0][:128]

    def parsed_body(self):
        if not self.body:
            return None
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        text = self.body.decode("utf-8", errors="replace")
        try:
            if "yaml" in ctype:
                return yaml.safe_load(text)
            return json.loads(text)
        except (ValueError, yaml.YAMLError) as err:
            if "json" not in ctype:
                try:
                    return yaml.safe_load(text)
                except yaml.YAMLError:
                    pass
            raise bad_request(f"the body of the request was in an unknown format: {err}")


class Api:
    def __init__(self, standin):
        self.standin = standin
        self.registry = standin.registry
        self.store = standin.store
        self.authorizer = standin.authorizer
        self.subs = Subresources(self)

    # --- entry point -----------------------------------------------------------------------------
    def handle(self, req):
        path = req.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, "ok", "text/plain; charset=utf-8")
        if req.identity is None and path not in PUBLIC_PATHS:
            from .errors import unauthorized
            raise unauthorized()
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] not in ("api", "apis", "version", "openapi"):
            self._authorize_path(req, path)
            raise NOT_FOUND
        if parts[0] in ("version", "openapi"):
            self._authorize_path(req, path)
            if parts == ["version"] and req.method == "GET":
                return Response(200, discovery.version_info())
            raise NOT_FOUND
        if parts[0] == "api":
            if len(parts) == 1:
                self._authorize_path(req, path)
                return Response(200, discovery.api_versions(self.standin.server_address))
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                self._authorize_path(req, path)
                groups = discovery.api_group_list(self.standin.serve_legacy_versions)
                if self.standin.metrics_server:
                    groups["groups"].append(self.standin.app.discovery_group())
                return Response(200, groups)
            if parts[1] == METRICS_GROUP:
                return self._metrics(req, path, parts)
            if len(parts) == 2:
                self._authorize_path(req, path)
                doc = discovery.api_group(parts[1], self.standin.serve_legacy_versions)
                if doc is None:
                    raise NOT_FOUND
                return Response(200, doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            self._authorize_path(req, path)
            doc = discovery.resource_list(group, version, self.standin.serve_legacy_versions)
            if doc is None:
                raise NOT_FOUND
            return Response(200, doc)
        namespaced = rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize")
        rtype = lookup(group, version, rest[2] if namespaced else rest[0], self.standin.serve_legacy_versions)
        warning = deprecation_warning(rtype, version) if rtype is not None else None
        if warning is None:
            return self._resource(req, group, version, rest)
        # A deprecated version still served: every answer says so, errors included.
        try:
            response = self._resource(req, group, version, rest)
        except ApiError as err:
            err.headers = {**(err.headers or {}), "Warning": warning}
            raise
        response.headers = {**(response.headers or {}), "Warning": warning}
        return response

    def _metrics(self, req, path, parts):
        """metrics.k8s.io, served by "metrics-server" (tests/kubeapi/appload.py) when it is on."""
        if not self.standin.metrics_server:
            self._authorize_path(req, path)
            raise NOT_FOUND
        if len(parts) <= 3:
            self._authorize_path(req, path)
            if len(parts) == 2:
                doc = dict(self.standin.app.discovery_group(), kind="APIGroup", apiVersion="v1")
                return Response(200, doc)
            if parts[2] != METRICS_VERSION:
                raise NOT_FOUND
            return Response(200, self.standin.app.resource_list())
        if parts[2] != METRICS_VERSION:
            raise NOT_FOUND
        return self.standin.app.serve_metrics(req, self, parts[3:])

    def _authorize_path(self, req, path):
        if req.identity is None:
            return
        attrs = {"verb": req.method.lower(), "path": path}
        if not self.authorizer.allowed(req.identity, attrs):
            raise denial(req.identity, attrs)

    # --- resources -------------------------------------------------------------------------------
    def _resource(self, req, group, version, rest):
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        if group == "" and ns and rest[0] == "services" and len(rest) >= 3 and rest[2] == "proxy":
            return self.standin.app.proxy(req, self, ns, rest[1], "/".join(rest[3:]))
        if len(rest) > 3:
            raise NOT_FOUND
        plural, name = rest[0], (rest[1] if len(rest) > 1 else None)
        sub = rest[2] if len(rest) > 2 else ""
        rtype = lookup(group, version, plural, self.standin.serve_legacy_versions)
        if rtype is None or (ns is not None and not rtype.namespaced):
            raise NOT_FOUND
        if sub and sub not in rtype.sub_by_name:
            raise NOT_FOUND
        if rtype.namespaced and ns is None and (name or req.method not in ("GET", "POST")):
            raise NOT_FOUND
        if rtype.namespaced and ns is None and req.method == "POST" and rtype.stored:
            raise method_not_allowed()
        verb = self._verb(req, name)
        if sub == "exec" and req.method in ("GET", "POST"):
            verb = "create"  # the websocket upgrade is a GET; current API servers authorize create on pods/exec
        if sub and verb not in rtype.sub_by_name[sub].verbs and not (sub == "status" and verb in ("get", "patch", "update")):
            raise method_not_allowed()
        if not sub and verb not in rtype.verbs and verb not in ("watch",):
            raise method_not_allowed()
        attrs = {"verb": verb, "group": group, "resource": plural, "subresource": sub, "name": name or "",
                 "namespace": ns or ""}
        self.authorizer.check(req.identity, attrs)
        if not rtype.stored:
            return self.subs.review(req, rtype, version, ns)
        if rtype.group == RBAC and verb in ("create", "update", "patch"):
            self._check_escalation(req, rtype, version, ns, name)
        if sub and sub != "status":
            return self.subs.dispatch(req, rtype, version, ns, name, sub)
        if verb in ("list", "watch"):
            return self._list(req, rtype, version, ns)
        if verb == "get":
            return Response(200, to_version(rtype, self.registry.get(rtype, ns, name), version))
        if verb == "create":
            return self._create(req, rtype, version, ns)
        if verb == "update":
            body = self._typed_body(req, rtype, version)
            from .resources import from_version
            obj = self.registry.update(rtype, ns or "", name, from_version(rtype, body, version), req.manager(),
                                       req.dry_run, sub, rtype.api_version(version))
            return Response(200, to_version(rtype, obj, version))
        if verb == "patch":
            return self._patch(req, rtype, version, ns, name, sub)
        if verb == "delete":
            return self._delete(req, rtype, version, ns, name)
        if verb == "deletecollection":
            return self._delete_collection(req, rtype, version, ns)
        raise method_not_allowed()

    def _check_escalation(self, req, rtype, version, ns, name):
        if "system:masters" in req.identity.groups:
            return
        if req.method == "PATCH":
            ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
            force = req.q("force")
            result = self.registry.patch(rtype, ns or "", name, ctype, req.parsed_body(),
                                         req.q("fieldManager") if "apply" in ctype else req.manager(),
                                         truthy(force) if force is not None else None, True, "", version)
        else:
            result = self._typed_body(req, rtype, version)
        check_escalation(self.authorizer, req.identity, rtype, result, ns)

    @staticmethod
    def _verb(req, name):
        method = req.method
        if method == "GET":
            if name:
                return "get"
            return "watch" if req.q_bool("watch") else "list"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        raise method_not_allowed()

    def _typed_body(self, req, rtype, version):
        body = req.parsed_body()
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format - accepted media types include: "
                              "application/json, application/yaml")
        expected = rtype.api_version(version)
        if body.get("apiVersion") and body["apiVersion"] != expected:
            raise bad_request(f"the API version in the data ({body['apiVersion']}) does not match the expected "
                              f"API version ({expected})")
        if body.get("kind") and body["kind"] != rtype.kind:
            raise bad_request(f"the kind in the data ({body['kind']}) does not match the expected kind ({rtype.kind})")
        return body

    def _create(self, req, rtype, version, ns):
        from .resources import from_version
        body = self._typed_body(req, rtype, version)
        obj = self.registry.create(rtype, ns or "", from_version(rtype, body, version), req.manager(),
                                   req.dry_run, rtype.api_version(version))
        return Response(201, to_version(rtype, obj, version))

    def _patch(self, req, rtype, version, ns, name, sub):
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        body = req.parsed_body()
        force = req.q("force")
        existed = self.store.peek(rtype.key, ns or "", name) is not None
        obj = self.registry.patch(rtype, ns or "", name, ctype, body,
                                  req.q("fieldManager") if "apply" in ctype else req.manager(),
                                  truthy(force) if force is not None else None, req.dry_run, sub, version)
        return Response(200 if existed else 201, to_version(rtype, obj, version))

    def _delete_options(self, req):
        body = req.parsed_body() if req.body else None
        opts = body if isinstance(body, dict) else {}
        propagation = req.q("propagationPolicy") or opts.get("propagationPolicy")
        orphan = req.q("orphanDependents") or opts.get("orphanDependents")
        if propagation is None and orphan is not None:
            propagation = "Orphan" if truthy(orphan) else "Background"
        grace = req.q_int("gracePeriodSeconds")
        if grace is None:
            grace = opts.get("gracePeriodSeconds")
        dry = req.dry_run or "All" in (opts.get("dryRun") or [])
        return propagation, grace, dry, opts.get("preconditions")

    def _delete(self, req, rtype, version, ns, name):
        propagation, grace, dry, pre = self._delete_options(req)
        result = self.registry.delete(rtype, ns or "", name, propagation, grace, dry, pre)
        if result.get("kind") != "Status":
            result = to_version(rtype, result, version)
        return Response(200, result)

    def _delete_collection(self, req, rtype, version, ns):
        propagation, grace, dry, _ = self._delete_options(req)
        items, _ = self._select(req, rtype, ns)
        deleted = []
        for obj in items:
            try:
                self.registry.delete(rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"],
                                     propagation, grace, dry)
            except ApiError as err:
                if err.code != 404:
                    raise
            deleted.append(self._list_item(rtype, obj, version))
        return Response(200, {"kind": rtype.list_kind(), "apiVersion": rtype.api_version(version),
                              "metadata": {"resourceVersion": str(self.store.current_rv)}, "items": deleted})

    # --- list and watch --------------------------------------------------------------------------
    def _selectors(self, req, rtype):
        return (parse_label_selector(req.q("labelSelector", "")),
                parse_field_selector(req.q("fieldSelector", ""), rtype))

    def _select(self, req, rtype, ns):
        labels, fields = self._selectors(req, rtype)
        return self.registry.list(rtype, ns, labels, fields)

    @staticmethod
    def _list_item(rtype, obj, version):
        item = to_version(rtype, obj, version)
        item.pop("apiVersion", None)
        item.pop("kind", None)
        return item

    def _list(self, req, rtype, version, ns):
        if req.q_bool("watch"):
            return self._watch(req, rtype, version, ns)
        items, rv = self._select(req, rtype, ns)
        limit, token = req.q_int("limit"), req.q("continue")
        meta = {"resourceVersion": str(rv)}
        if token:
            try:
                state = json.loads(base64.b64decode(token))
                rv, start = state["rv"], tuple(state["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid: incorrect encoded start "
                                                  "resourceVersion (version meta.k8s.io/v1)")
            items = [i for i in items if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > start]
            meta["resourceVersion"] = str(rv)
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.b64encode(json.dumps(
                {"rv": int(meta["resourceVersion"]), "start": [last.get("namespace", ""), last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return Response(200, {"kind": rtype.list_kind(), "apiVersion": rtype.api_version(version), "metadata": meta,
                              "items": [self._list_item(rtype, i, version) for i in items]})

    def _watch(self, req, rtype, version, ns):
        labels, fields = self._selectors(req, rtype)
        timeout = req.q_int("timeoutSeconds")
        timeout = 1800 if timeout is None else timeout
        bookmarks = req.q_bool("allowWatchBookmarks")
        send_initial = req.q_bool("sendInitialEvents")
        rv_param = req.q("resourceVersion")
        if rv_param not in (None, "") and not rv_param.isdigit():
            raise bad_request(f'invalid resource version: "{rv_param}"')
        if send_initial and req.q("resourceVersionMatch") != "NotOlderThan":
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                           "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                           {"group": "meta.k8s.io", "kind": "ListOptions"})
        if send_initial and not bookmarks:
            raise ApiError(422, "Invalid", 'ListOptions.meta.k8s.io "" is invalid: allowWatchBookmarks: Required '
                           "value: sendInitialEvents requires setting allowWatchBookmarks to true",
                           {"group": "meta.k8s.io", "kind": "ListOptions"})

        def matches(obj):
            if obj is None:
                return False
            if rtype.namespaced and ns and obj["metadata"].get("namespace") != ns:
                return False
            return labels_match(labels, obj["metadata"].get("labels")) and fields_match(fields, obj)

        def event(kind, obj):
            return (json.dumps({"type": kind, "object": to_version(rtype, obj, version)},
                               separators=(",", ":")) + "\n").encode()

        def bookmark(rv, initial_end=False):
            meta = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return (json.dumps({"type": "BOOKMARK", "object": {"kind": rtype.kind, "apiVersion":
                                rtype.api_version(version), "metadata": meta}}) + "\n").encode()

        store, interval = self.store, self.standin.bookmark_interval

        def stream():
            deadline = time.monotonic() + timeout
            initial = []
            with store.lock:
                if rv_param in (None, "", "0") or send_initial:
                    initial = [o for o in store.items(rtype.key, ns if rtype.namespaced else None) if matches(o)]
                    index = store.start_index(store.current_rv)
                    start_rv = store.current_rv
                else:
                    try:
                        index = store.start_index(int(rv_param))
                    except ApiError as err:
                        yield (json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode()
                        return
                    start_rv = int(rv_param)
            for obj in initial:
                yield event("ADDED", obj)
            if send_initial:
                yield bookmark(start_rv, initial_end=True)
            last_bookmark = time.monotonic()
            while not store.closed:
                try:
                    with store.lock:
                        changes, index = store.changes_from(index)
                        current = store.current_rv
                except ApiError as err:
                    yield (json.dumps({"type": "ERROR", "object": err.status()}) + "\n").encode()
                    return
                for ch in changes:
                    if ch.key != rtype.key:
                        continue
                    now_match, before = matches(ch.obj), matches(ch.prev)
                    if ch.type == "DELETED":
                        if now_match or before:
                            yield event("DELETED", ch.obj)
                    elif now_match:
                        yield event("MODIFIED" if before and ch.type == "MODIFIED" else "ADDED", ch.obj)
                    elif before:
                        yield event("DELETED", ch.obj)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if bookmarks and time.monotonic() - last_bookmark >= interval:
                    last_bookmark = time.monotonic()
                    yield bookmark(current)
                if not changes:
                    yield b""
                    store.wait_past(index, min(remaining, 0.5))

        return Response(200, None, "application/json", stream=stream())
