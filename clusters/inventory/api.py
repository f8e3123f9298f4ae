"""Inventory REST API: credentials (write-only secrets), servers, groups, import/export,
the Ansible dynamic inventory, and starting recipe runs. Handlers read the database and
start jobs; they never talk to a server."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from panel.accounts.access import HasRole, get_visible_or_404
from panel.jobs.models import Job
from panel.jobs.serializers import JobSerializer
from panel.jobs.services import start_job

from clusters import conf
from clusters.inventory.filters import ServerFilter
from clusters.inventory.ansible_files import InventoryError, apply_import, export_dynamic, export_ini, export_yaml, parse_inventory, plan_import
from clusters.inventory.jobs import RecipeRunParams
from clusters.inventory.known_hosts import KnownHostsError, parse_known_hosts, pin_key, plan_pins, scanned_key
from clusters.models import Credential, Group, Server
from clusters.recipes import builtin_names, load_builtin
from clusters.recipes.project import encode_archive
from clusters.inventory.serializers import CredentialSerializer, GroupSerializer, ImportSerializer, RecipeInfoSerializer, ServerListSerializer, ServerSerializer
from clusters.inventory.views import accept_offered_key

# The global checks (signed in, token scope) and the inventory's role.
Operators = HasRole.for_("is_operator")
OPERATORS = [*api_settings.DEFAULT_PERMISSION_CLASSES, Operators]


class _ProtectedDelete:
    def perform_destroy(self, instance):
        try:
            instance.delete()
        except ProtectedError as exc:
            users = ", ".join(sorted({str(obj) for obj in exc.protected_objects})[:10])
            raise _Conflict(f"{instance} is still used by: {users}.") from None


class _Conflict(ValidationError):
    status_code = status.HTTP_409_CONFLICT


class CredentialList(generics.ListCreateAPIView):
    """Credentials. The secret is write-only: responses carry only the public part (key type, fingerprint)."""

    serializer_class = CredentialSerializer
    permission_classes = OPERATORS

    def get_queryset(self):
        return Credential.objects.visible_to(self.request.user).annotate(server_count=Count("servers")).order_by("name")

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)


class CredentialDetail(_ProtectedDelete, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = CredentialSerializer
    permission_classes = OPERATORS

    def get_object(self):
        return get_visible_or_404(Credential, self.request.user, pk=self.kwargs["pk"])


class ServerList(generics.ListCreateAPIView):
    """Servers; filter with q (name or address), group (includes child groups), label (key=value) and state."""

    permission_classes = OPERATORS
    filterset_class = ServerFilter

    def get_serializer_class(self):
        return ServerListSerializer if self.request.method == "GET" else ServerSerializer

    def get_queryset(self):
        return (Server.objects.visible_to(self.request.user).select_related("credential", "jump_host")
                .prefetch_related("groups").order_by("name"))


class ServerDetail(_ProtectedDelete, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = ServerSerializer
    permission_classes = OPERATORS

    def get_object(self):
        return get_visible_or_404(Server.objects.select_related("credential", "jump_host"), self.request.user, pk=self.kwargs["pk"])


class ServerAcceptHostKey(APIView):
    """Pin the host key the server presented and that was refused (after a re-install). Audited."""

    permission_classes = OPERATORS

    @extend_schema(request=None, responses={200: ServerSerializer})
    def post(self, request, pk):
        with transaction.atomic():
            server = get_visible_or_404(Server.objects.select_for_update(), request.user, pk=pk)
            if not server.offered_host_key:
                return Response({"detail": "There is no refused host key to accept."}, status=status.HTTP_409_CONFLICT)
            accept_offered_key(server, request.user)
        return Response(ServerSerializer(server).data)


class PinScannedKeySerializer(serializers.Serializer):
    job = serializers.IntegerField(help_text="The server-scan-host-keys job that found the key.")
    fingerprint = serializers.CharField(help_text='The key\'s "SHA256:..." fingerprint as the scan showed it.')


class KnownHostsSerializer(serializers.Serializer):
    known_hosts = serializers.CharField(help_text="Lines of an OpenSSH known_hosts file (plain or hashed names, [host]:port).", trim_whitespace=False)
    dry_run = serializers.BooleanField(required=False, default=False, help_text="Only say what would be pinned.")


class ServerScanHostKeys(APIView):
    """Start a job that fetches the host keys the server offers (no login); its result lists their fingerprints."""

    permission_classes = OPERATORS

    @extend_schema(request=None, responses={202: JobSerializer})
    def post(self, request, pk):
        server = get_visible_or_404(Server, request.user, pk=pk)
        job = start_job("server-scan-host-keys", {}, request.user, target=server)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ServerPinHostKey(APIView):
    """Pin exactly the key a finished scan of this server found, named by its fingerprint. Audited."""

    permission_classes = OPERATORS

    @extend_schema(request=PinScannedKeySerializer, responses={200: ServerSerializer})
    def post(self, request, pk):
        body = PinScannedKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():
            server = get_visible_or_404(Server.objects.select_for_update(), request.user, pk=pk)
            job = Job.objects.filter(pk=body.validated_data["job"]).first()
            key = scanned_key(job, server, body.validated_data["fingerprint"]) if job else None
            if key is None:
                raise ValidationError({"fingerprint": ["No finished scan of this server (that job) found a key with this fingerprint; scan again."]})
            pin_key(server, key, request.user, how=f"confirmed from scan job #{job.pk}")
        return Response(ServerSerializer(server).data)


class KnownHostsImport(APIView):
    """Pin host keys of servers from a known_hosts file (or, with dry_run, say what would change)."""

    permission_classes = OPERATORS

    @extend_schema(request=KnownHostsSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request):
        body = KnownHostsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            entries, warnings = parse_known_hosts(body.validated_data["known_hosts"])
        except KnownHostsError as exc:
            raise ValidationError({"known_hosts": exc.problems}) from None
        rows = plan_pins(entries, Server.objects.visible_to(request.user).order_by("name"))
        if not body.validated_data["dry_run"]:
            with transaction.atomic():
                for row in rows:
                    if row["action"] != "unchanged":
                        pin_key(Server.objects.select_for_update().get(pk=row["server"].pk), row["key"], request.user, how="imported from known_hosts")
        return Response({
            "dry_run": body.validated_data["dry_run"], "warnings": warnings,
            "servers": [{"id": row["server"].pk, "name": row["server"].name, "key_type": row["key_type"], "fingerprint": row["fingerprint"],
                         "action": row["action"], "previous_fingerprint": row["previous_fingerprint"]} for row in rows],
        })


class GroupList(generics.ListCreateAPIView):
    serializer_class = GroupSerializer
    permission_classes = OPERATORS

    def get_queryset(self):
        return Group.objects.visible_to(self.request.user).annotate(server_count=Count("servers")).prefetch_related("children").order_by("name")


class GroupDetail(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = GroupSerializer
    permission_classes = OPERATORS

    def get_object(self):
        return get_visible_or_404(Group.objects.annotate(server_count=Count("servers")), self.request.user, pk=self.kwargs["pk"])


class InventoryImport(APIView):
    """Import an Ansible inventory (INI or YAML). With dry_run, only the preview is returned."""

    permission_classes = OPERATORS

    @extend_schema(request=ImportSerializer, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT})
    def post(self, request):
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = data.validated_data
        try:
            inventory = parse_inventory(options["text"], options["source"], options.get("format"))
            plan = plan_import(inventory, read_key_files=False, default_credential=options.get("credential"))
        except InventoryError as exc:
            raise ValidationError({"text": [str(exc)]}) from None
        if options["dry_run"]:
            return Response({"applied": False, **plan.as_dict()})
        apply_import(plan)
        return Response({"applied": True, **plan.as_dict()}, status=status.HTTP_201_CREATED)


class _FormatIsOurs(DefaultContentNegotiation):
    """`?format=ini|yaml` names the file format here, not a DRF renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class InventoryExport(APIView):
    """The inventory as an Ansible INI or YAML file."""

    permission_classes = OPERATORS
    content_negotiation_class = _FormatIsOurs

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["ini", "yaml"])],
                   responses={(200, "text/plain"): OpenApiTypes.STR, (200, "application/yaml"): OpenApiTypes.OBJECT})
    def get(self, request):
        fmt = request.query_params.get("format", "ini")
        if fmt not in ("ini", "yaml"):
            raise ValidationError({"format": ["Use ini or yaml."]})
        body = export_ini() if fmt == "ini" else export_yaml()
        return HttpResponse(body, content_type="text/plain; charset=utf-8" if fmt == "ini" else "application/yaml; charset=utf-8")


class AnsibleDynamicInventory(APIView):
    """What an Ansible dynamic inventory script prints for --list (groups, children, vars, _meta.hostvars)."""

    permission_classes = OPERATORS

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(export_dynamic(Server.objects.visible_to(request.user)))


class RecipeList(APIView):
    permission_classes = OPERATORS

    @extend_schema(responses=RecipeInfoSerializer(many=True))
    def get(self, request):
        recipes = []
        for name in builtin_names():
            recipe = load_builtin(name)
            variables = {key: value for play in recipe.plays for key, value in play.vars.items()}
            recipes.append({"name": name, "title": recipe.name, "description": recipe.description, "tasks": recipe.task_count, "variables": variables})
        return Response(recipes)


class RecipeRunStart(APIView):
    """Start a recipe run: a built-in recipe or a playbook (YAML text), on servers (ids) and/or a limit pattern."""

    permission_classes = OPERATORS

    @extend_schema(request=RecipeRunParams, responses={201: JobSerializer})
    def post(self, request):
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Send a JSON object: {\"recipe\" or \"playbook\", \"servers\" and/or \"limit\"}."]})
        params = {key: request.data.get(key) for key in request.data} if hasattr(request.data, "getlist") else dict(request.data)
        for key in ("servers", "tags", "skip_tags"):
            if hasattr(request.data, "getlist") and key in request.data:
                params[key] = request.data.getlist(key)
        upload = params.get("project")
        if hasattr(upload, "read"):  # multipart: the archive itself rather than its base64
            if upload.size > conf.PROJECT_ARCHIVE_MAX_BYTES:
                raise ValidationError({"project": [f"The archive is {upload.size // 1024} KiB; the limit is {conf.PROJECT_ARCHIVE_MAX_BYTES // 1024} KiB."]})
            params["project"] = encode_archive(upload.read())
        if params.get("path"):
            raise ValidationError({"path": ["Recipe files on the panel's machine can only be run from the command line."]})
        servers = params.get("servers") or []
        target = None
        if isinstance(servers, list) and len(servers) == 1 and not params.get("limit"):
            target = Server.objects.visible_to(request.user).filter(pk=servers[0]).first() if str(servers[0]).isdigit() else None
        try:
            job = start_job("recipe-run", params, request.user, target=target)
        except PermissionDenied as exc:
            raise ApiPermissionDenied(str(exc)) from None
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)
