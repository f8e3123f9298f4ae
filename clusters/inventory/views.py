"""Inventory pages. They read the database and start jobs; they never talk to a server."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Max, ProtectedError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404, role_required
from panel.audit.models import Action
from panel.audit.recorder import record
from panel.jobs.forms import carry_errors
from panel.jobs.models import Job, JobEvent
from panel.jobs.services import start_job

from clusters.inventory.credentials import SECRET_FIELDS
from clusters.drivers.ssh import fingerprint
from clusters.inventory.filters import STATE_CHOICES, ServerFilter
from clusters.inventory.forms import CredentialForm, GroupForm, ImportForm, KnownHostsForm, RecipeRunForm, ServerForm
from clusters.inventory.known_hosts import KnownHostsError, parse_known_hosts, pin_key, plan_pins, scanned_key
from clusters.inventory.ansible_files import InventoryError, apply_import, export_ini, export_yaml, parse_inventory, plan_import
from clusters.models import Credential, CredentialKind, Group, Server, ServerJob

PAGE_SIZE = 50
OPERATOR_ONLY = _("The inventory is for operators.")


def inventory_view(view):
    """Every inventory page: logged in, and an operator (or admin)."""
    return login_required(role_required("is_operator", OPERATOR_ONLY)(view))


# ---- servers ----------------------------------------------------------------------------------


def server_queryset(user):
    return Server.objects.visible_to(user).select_related("credential").prefetch_related("groups").order_by("name")


@inventory_view
@require_GET
def server_list(request):
    server_filter = ServerFilter(request.GET, queryset=server_queryset(request.user))
    page = Paginator(server_filter.qs, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"filter": server_filter, "page": page, "now": timezone.now()}
    if request.htmx and request.htmx.target == "server-table":
        return render(request, "clusters/partials/server_table.html", context)
    # The filter form is written out in the template: 200 groups through Django's widget
    # templates cost more than the whole table.
    context.update(group_names=list(Group.objects.order_by("name").values_list("name", flat=True)), states=STATE_CHOICES)
    return render(request, "clusters/server_list.html", context)


@inventory_view
@require_GET
def server_detail(request, pk):
    server = get_visible_or_404(Server.objects.select_related("credential", "jump_host"), request.user, pk=pk)
    links = ServerJob.objects.filter(server=server).select_related("job", "job__user").order_by("-job_id")[:15]
    target_jobs = Job.objects.for_target(server).select_related("user").order_by("-created_at")[:15]
    jobs = {link.job.pk: {"job": link.job, "recap": link.recap} for link in links}
    for job in target_jobs:
        jobs.setdefault(job.pk, {"job": job, "recap": {}})
    recent = sorted(jobs.values(), key=lambda item: -item["job"].pk)[:15]
    context = {"server": server, "recent": recent, "groups": server.groups.order_by("name"), "facts": server.facts or {},
               "scan": Job.objects.for_target(server).filter(kind="server-scan-host-keys").order_by("-pk").first()}
    if request.htmx and request.htmx.target == "server-state":
        return render(request, "clusters/partials/server_state.html", context)
    if request.htmx and request.htmx.target == "host-key-scan":
        return render(request, "clusters/partials/host_key_scan.html", context)
    return render(request, "clusters/server_detail.html", context)


@inventory_view
@require_http_methods(["GET", "POST"])
def server_edit(request, pk=None):
    server = get_visible_or_404(Server, request.user, pk=pk) if pk else None
    form = ServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        server = form.save()
        messages.success(request, _("Server %(name)s saved.") % {"name": server.name})
        return redirect("clusters:server_detail", server.pk)
    return render(request, "clusters/form.html", {"form": form, "object": server, "title": _("Edit server") if server else _("New server"),
                                                  "cancel": server.get_absolute_url() if server else None}, status=400 if form.errors else 200)


@inventory_view
@require_POST
def server_delete(request, pk):
    server = get_visible_or_404(Server, request.user, pk=pk)
    try:
        server.delete()
    except ProtectedError:
        messages.error(request, _("%(name)s is still used (as a jump host or by a cluster); change those first.") % {"name": server.name})
        return redirect("clusters:server_detail", pk)
    messages.success(request, _("Server %(name)s deleted.") % {"name": server.name})
    return redirect("clusters:server_list")


@inventory_view
@require_POST
def server_accept_host_key(request, pk):
    """Pin the key the host presented and we refused (after a re-install). Audited; no contact with the host."""
    with transaction.atomic():
        server = get_visible_or_404(Server.objects.select_for_update(), request.user, pk=pk)
        if not server.offered_host_key:
            messages.warning(request, _("There is no refused host key to accept."))
            return redirect("clusters:server_detail", pk)
        accept_offered_key(server, request.user)
    messages.success(request, _("The new host key of %(name)s is now pinned.") % {"name": server.name})
    return redirect("clusters:server_detail", pk)


@inventory_view
@require_POST
def server_scan_host_keys(request, pk):
    """Start a job that asks the host for its keys (a view never talks to a host)."""
    server = get_visible_or_404(Server, request.user, pk=pk)
    job = start_job("server-scan-host-keys", {}, request.user, target=server)
    messages.info(request, _("Scanning the host keys of %(name)s (job #%(job)s); compare the fingerprints with the server's console, then pin one.") % {
        "name": server.name, "job": job.pk})
    return redirect(f"{server.get_absolute_url()}#host-key-scan")


@inventory_view
@require_POST
def server_pin_scanned_key(request, pk):
    """Pin exactly the key a scan job of this server recorded, named by its fingerprint."""
    with transaction.atomic():
        server = get_visible_or_404(Server.objects.select_for_update(), request.user, pk=pk)
        job = Job.objects.filter(pk=request.POST.get("job") if str(request.POST.get("job", "")).isdigit() else None).first()
        key = scanned_key(job, server, request.POST.get("fingerprint", "")) if job else None
        if key is None:
            messages.error(request, _("That key is not one a finished scan of this server found; scan again."))
            return redirect("clusters:server_detail", pk)
        pin_key(server, key, request.user, how=f"confirmed from scan job #{job.pk}")
    messages.success(request, _("The host key %(fingerprint)s of %(name)s is now pinned.") % {"fingerprint": fingerprint(key), "name": server.name})
    return redirect("clusters:server_detail", pk)


@inventory_view
@require_http_methods(["GET", "POST"])
def known_hosts_import(request):
    """Pin host keys from a known_hosts file: preview which servers get which key, then confirm."""
    form = KnownHostsForm(request.POST or None, request.FILES or None)
    rows = warnings = None
    error = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            entries, warnings = parse_known_hosts(data["text"], data["source"])
        except KnownHostsError as exc:
            error = str(exc)
        else:
            rows = plan_pins(entries, server_queryset(request.user))
            if request.POST.get("confirm") == "1":
                with transaction.atomic():
                    pinned = 0
                    for row in rows:
                        if row["action"] != "unchanged":
                            server = Server.objects.select_for_update().get(pk=row["server"].pk)
                            pinned += pin_key(server, row["key"], request.user, how=f"imported from {data['source']}")
                messages.success(request, _("Pinned %(n)d host key(s) from %(source)s.") % {"n": pinned, "source": data["source"]})
                return redirect("clusters:server_list")
            form = previewed_form(KnownHostsForm, request, data["text"])
    status = 400 if (form.errors or error) else 200
    return render(request, "clusters/known_hosts.html", {"form": form, "rows": rows, "warnings": warnings, "error": error}, status=status)


def previewed_form(form_class, request, text):
    """The form of a preview, bound again with the text it read, an uploaded file's too:
    a file input comes back empty, so the confirm button would otherwise send nothing."""
    post = request.POST.copy()
    post["text"] = text
    form = form_class(post)
    form.is_valid()
    return form


def accept_offered_key(server, user):
    before = {"pinned_host_key": fingerprint(server.pinned_host_key) if server.pinned_host_key else ""}
    after = {"pinned_host_key": fingerprint(server.offered_host_key)}
    server.pinned_host_key, server.host_key_pinned_at = server.offered_host_key, timezone.now()
    server.offered_host_key, server.offered_host_key_at = "", None
    server.save(update_fields=["pinned_host_key", "host_key_pinned_at", "offered_host_key", "offered_host_key_at"])
    record(Action.UPDATE, server, before=before, after=after, user=user,
           message=f"Accepted the new host key {after['pinned_host_key']} (was {before['pinned_host_key'] or 'none'})")


@inventory_view
@require_POST
def servers_gather_facts(request):
    ids = [int(value) for value in request.POST.getlist("servers") if value.isdigit()]
    try:
        job = start_job("server-facts", {"servers": ids}, request.user, target=_single_target(ids))
    except ValidationError as exc:
        messages.error(request, _flatten(exc.detail))
        return redirect(request.POST.get("next") or "clusters:server_list")
    return redirect("clusters:run_detail", job.pk)


def _single_target(ids):
    return Server.objects.filter(pk=ids[0]).first() if len(ids) == 1 else None


def _flatten(detail):
    if isinstance(detail, dict):
        return " ".join(_flatten(value) for value in detail.values())
    if isinstance(detail, list):
        return " ".join(_flatten(value) for value in detail)
    return str(detail)


# ---- recipe runs ---------------------------------------------------------------------------------


@inventory_view
@require_http_methods(["GET", "POST"])
def recipe_run(request):
    # Arriving from the server list (a selection), the form starts with those servers.
    arriving = request.method == "POST" and request.POST.get("select") == "1"
    source = request.POST if arriving else request.GET
    initial_ids = [value for value in source.getlist("servers") if value.isdigit()]
    bound = request.POST if request.method == "POST" and not arriving else None
    form = RecipeRunForm(bound, request.FILES if bound is not None else None, initial={"servers": initial_ids, "recipe": request.GET.get("recipe", "")})
    if bound is not None and form.is_valid():
        params = form.params()
        try:
            job = start_job("recipe-run", params, request.user, target=_single_target(params["servers"]) if not params["limit"] else None)
        except ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, dict) and "variables" in detail:
                detail["variables_text"] = detail.pop("variables")
            carry_errors(form, detail)
        except PermissionDenied:
            raise
        else:
            return redirect("clusters:run_detail", job.pk)
    selected = Server.objects.filter(pk__in=form.data.getlist("servers") if form.is_bound else initial_ids).only("pk", "name").order_by("name")
    return render(request, "clusters/recipe_run.html", {"form": form, "selected": selected}, status=400 if form.errors else 200)


@inventory_view
@require_GET
def run_detail(request, pk):
    """A recipe run's hosts, live: per-host counts and the last task, from the job's lines."""
    job = get_visible_or_404(Job.objects.filter(kind__in=("recipe-run", "server-facts")), request.user, pk=pk)
    rows = host_progress(job)
    context = {"job": job, "rows": rows, "polling": not job.is_finished}
    if request.htmx:
        return render(request, "clusters/partials/run_hosts.html", context)
    return render(request, "clusters/run_detail.html", context)


def host_progress(job):
    counts = {}
    for host, outcome, count in (JobEvent.objects.filter(job=job).exclude(host="").exclude(task="recap").exclude(outcome="")
                                 .values_list("host", "outcome").annotate(n=Count("id")).values_list("host", "outcome", "n")):
        counts.setdefault(host, {})[outcome] = count
    last_seqs = dict(JobEvent.objects.filter(job=job).exclude(host="").exclude(task="recap").exclude(outcome="")
                     .values_list("host").annotate(last=Max("seq")).values_list("host", "last"))
    last = {event.host: event for event in JobEvent.objects.filter(job=job, seq__in=list(last_seqs.values()))}
    recaps = {link.server.name: link.recap for link in ServerJob.objects.filter(job=job).select_related("server")}
    names = sorted(set(recaps) | set(counts))
    rows = []
    for name in names:
        recap = recaps.get(name) or {}
        seen = counts.get(name, {})
        event = last.get(name)
        done = bool(recap)
        if recap.get("unreachable"):
            state = "unreachable"
        elif recap.get("failed") or (not done and seen.get("failed")):
            state = "failed"
        elif done:
            state = "done"
        elif seen:
            state = "running"
        else:
            state = "waiting"
        rows.append({"host": name, "ok": seen.get("ok", 0), "changed": seen.get("changed", 0), "failed": seen.get("failed", 0),
                     "skipped": seen.get("skipped", 0), "state": state, "last_task": event.task if event else "",
                     "last_text": (event.text if event else "")[:160], "server_id": None})
    return rows


# ---- groups -------------------------------------------------------------------------------------------


@inventory_view
@require_GET
def group_list(request):
    groups = Group.objects.visible_to(request.user).annotate(server_count=Count("servers", distinct=True)).prefetch_related("children").order_by("name")
    page = Paginator(groups, 100).get_page(request.GET.get("page"))
    return render(request, "clusters/group_list.html", {"page": page})


@inventory_view
@require_GET
def group_detail(request, pk):
    group = get_visible_or_404(Group, request.user, pk=pk)
    servers = Paginator(group.servers.select_related("credential").order_by("name"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"group": group, "servers": servers, "children": group.children.order_by("name"), "parents": group.parents.order_by("name")}
    return render(request, "clusters/group_detail.html", context)


@inventory_view
@require_http_methods(["GET", "POST"])
def group_edit(request, pk=None):
    group = get_visible_or_404(Group, request.user, pk=pk) if pk else None
    form = GroupForm(request.POST or None, instance=group)
    if request.method == "POST" and form.is_valid():
        group = form.save()
        messages.success(request, _("Group %(name)s saved.") % {"name": group.name})
        return redirect("clusters:group_detail", group.pk)
    return render(request, "clusters/form.html", {"form": form, "object": group, "title": _("Edit group") if group else _("New group"),
                                                  "cancel": None}, status=400 if form.errors else 200)


@inventory_view
@require_POST
def group_delete(request, pk):
    group = get_visible_or_404(Group, request.user, pk=pk)
    group.delete()
    messages.success(request, _("Group %(name)s deleted; its servers stay.") % {"name": group.name})
    return redirect("clusters:group_list")


# ---- credentials ------------------------------------------------------------------------------------


@inventory_view
@require_GET
def credential_list(request):
    credentials = Credential.objects.visible_to(request.user).annotate(server_count=Count("servers")).order_by("name")
    return render(request, "clusters/credential_list.html", {"credentials": credentials, "kinds": CredentialKind.choices})


@inventory_view
@require_http_methods(["GET", "POST"])
def credential_edit(request, pk=None):
    credential = get_visible_or_404(Credential, request.user, pk=pk) if pk else None
    kind = credential.kind if credential else request.GET.get("kind", request.POST.get("kind", CredentialKind.SSH_KEY))
    if kind not in SECRET_FIELDS:
        raise Http404(_("Unknown credential kind."))
    form = CredentialForm(request.POST or None, instance=credential, kind=kind)
    if request.method == "POST" and form.is_valid():
        credential = form.save(commit=False)
        if credential.pk is None:
            credential.created_by = request.user
        credential.save()
        messages.success(request, _("Credential %(name)s saved.") % {"name": credential.name})
        return redirect("clusters:credential_list")
    title = _("Edit credential") if credential else _("New credential: %(kind)s") % {"kind": dict(CredentialKind.choices)[kind]}
    return render(request, "clusters/credential_form.html", {"form": form, "object": credential, "kind": kind, "title": title},
                  status=400 if form.errors else 200)


@inventory_view
@require_POST
def credential_delete(request, pk):
    credential = get_visible_or_404(Credential, request.user, pk=pk)
    try:
        credential.delete()
    except ProtectedError:
        messages.error(request, _("%(name)s is still used by servers or clusters.") % {"name": credential.name})
        return redirect("clusters:credential_list")
    messages.success(request, _("Credential %(name)s deleted.") % {"name": credential.name})
    return redirect("clusters:credential_list")


# ---- import / export ----------------------------------------------------------------------------------


@inventory_view
@require_http_methods(["GET", "POST"])
def inventory_import(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    plan = error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            inventory = parse_inventory(data["text"], data["source"], data["format"] or None)
            plan = plan_import(inventory, read_key_files=False, default_credential=data.get("credential"))
        except InventoryError as exc:
            error = str(exc)
        else:
            if request.POST.get("confirm") == "1":
                counts = apply_import(plan)
                messages.success(request, _("Imported: %(servers)d server(s) created, %(updated)d updated, %(groups)d group(s) created.") % {
                    "servers": counts["servers_created"], "updated": counts["servers_updated"], "groups": counts["groups_created"]})
                return redirect("clusters:server_list")
            form = previewed_form(ImportForm, request, data["text"])
    status = 400 if (form.errors or error) else 200
    return render(request, "clusters/import.html", {"form": form, "plan": plan, "error": error}, status=status)


@inventory_view
@require_GET
def inventory_export(request):
    fmt = request.GET.get("format", "ini")
    if fmt == "yaml":
        body, content_type, name = export_yaml(), "application/yaml", "inventory.yml"
    elif fmt == "ini":
        body, content_type, name = export_ini(), "text/plain", "inventory.ini"
    else:
        raise Http404(_("Export formats: ini, yaml."))
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
