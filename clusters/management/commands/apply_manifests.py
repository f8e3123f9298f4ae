"""manage.py apply_manifests PATH... --cluster NAME --namespace NS [--validate-only | --dry-run]

Validate, diff (server-side dry run) or apply Kubernetes manifests as a job of the panel,
run here and now: the live log goes to standard output, then the validation result, the
diff or the applied objects. The exit status is 0 on success, 1 on a refusal or failure.
PATH may be a file, a folder (its *.yaml / *.yml / *.json files) or - for standard input.
"""

import sys
from pathlib import Path

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError
from rest_framework.exceptions import ValidationError

from clusters.management.commands.run_recipe import _errors, _Printer
from clusters.models import Cluster, ManifestSet
from panel.audit.context import acting_as
from panel.jobs.kinds import get_kind
from panel.jobs.models import Job, Status
from panel.jobs.runner import execute
from panel.lib.commands import PanelCommand

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def read_sources(paths, stdin=None):
    """[(name, text)] from files, folders (sorted) and '-'."""
    sources = []
    for raw in paths:
        if raw == "-":
            sources.append(("<stdin>", (stdin or sys.stdin).read()))
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())
            if not files:
                raise CommandError(f"{path} has no .yaml, .yml or .json file.")
            sources.extend((str(p), p.read_text(encoding="utf-8")) for p in files)
        elif path.is_file():
            sources.append((str(path), path.read_text(encoding="utf-8")))
        else:
            raise CommandError(f"{path}: no such file or folder.")
    return sources


class Command(PanelCommand):
    help = "Validate, diff or apply Kubernetes manifests on a cluster of the inventory."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Manifest files or folders (- for standard input).")
        parser.add_argument("--cluster", required=True, help="Name of a Kubernetes cluster in the inventory.")
        parser.add_argument("--namespace", "-n", required=True, help="Namespace for the namespaced objects.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--validate-only", action="store_true", help="Only check the manifests against the cluster; send nothing.")
        mode.add_argument("--dry-run", action="store_true", help="Server-side dry run: print the diff against the live objects; change nothing.")
        parser.add_argument("--force", action="store_true", help="Take over fields another field manager owns.")
        parser.add_argument("--rollout-timeout", type=int, default=600, help="Seconds to wait for each Deployment's rollout (default 600).")

    def handle(self, paths, cluster, namespace, validate_only, dry_run, force, rollout_timeout, **options):
        target = Cluster.objects.filter(name=cluster, kind="kubernetes").first()
        if target is None:
            known = ", ".join(Cluster.objects.filter(kind="kubernetes").values_list("name", flat=True)) or "none"
            raise CommandError(f"No Kubernetes cluster named {cluster!r} (known: {known}).")
        sources = read_sources(paths)
        kind_name = "kube-manifests-validate" if validate_only else "kube-manifests-diff" if dry_run else "kube-manifests-apply"
        kind = get_kind(kind_name)
        with acting_as(user=None, source="cli"):
            stored = ManifestSet(cluster=target, namespace=namespace)
            stored.set_sources(sources)
            stored.save()
            params = {"manifest_set": stored.pk}
            if kind_name == "kube-manifests-apply":
                params.update(force=force, rollout_timeout=rollout_timeout)
            try:
                cleaned = kind.validate(params, context={"user": None, "target": target, "cli": True})
            except ValidationError as exc:
                raise CommandError(_errors(exc.detail)) from None
            job = Job.objects.create(kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout,
                                     target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk), target_repr=str(target)[:200])
        self.stdout.write(f"Job #{job.pk}: {kind.label} on {target.name}, namespace {namespace}")
        printer = _Printer(job.pk, self.stdout)
        printer.start()
        try:
            execute(job.pk)
        finally:
            printer.stop()
        job.refresh_from_db()
        if job.status != Status.SUCCEEDED:
            raise CommandError(f"Job #{job.pk} {job.status}: {job.error}")
        self.print_result(kind_name, job.result or {})

    def print_result(self, kind_name, result):
        write = self.stdout.write
        if kind_name == "kube-manifests-validate":
            write(f"Valid: {len(result['objects'])} object(s) ({result['discovery_requests']} discovery requests)")
            for row in result["objects"]:
                write(f"  {row['kind']}/{row['name']} ({row['apiVersion']}) in {row['namespace'] or '(cluster)'}")
        elif kind_name == "kube-manifests-diff":
            counts = result["counts"]
            write(f"Dry run: {counts['created']} to create, {counts['changed']} to change, {counts['unchanged']} unchanged")
            for row in result["objects"]:
                write(f"{row['kind']}/{row['name']}: {row['state']}")
                if row["diff"]:
                    self.stdout.write(row["diff"].rstrip("\n"))
        else:
            write(f"Applied {len(result['applied'])} object(s):")
            for row in result["applied"]:
                write(f"  {row['kind']}/{row['name']} {row['action']}")
            for rollout in result.get("rollouts", []):
                write(f"  rollout of Deployment/{rollout['name']}: {rollout['status']}")
