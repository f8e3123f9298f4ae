"""manage.py import_inventory PATH [--dry-run]: an Ansible inventory (INI or YAML) into the panel."""

from django.core.management.base import CommandError

from clusters.inventory.ansible_files import InventoryError, apply_import, parse_inventory, plan_import
from clusters.models import Credential
from panel.audit.context import acting_as
from panel.lib.commands import PanelCommand


class Command(PanelCommand):
    help = "Import an Ansible inventory (INI or YAML): servers, groups, children and vars. Nothing is removed."

    def add_arguments(self, parser):
        parser.add_argument("path", help="The inventory file (use - for standard input).")
        parser.add_argument("--dry-run", action="store_true", help="Show what would be created or changed, change nothing.")
        parser.add_argument("--format", choices=["ini", "yaml"], help="Guessed from the name and content when absent.")
        parser.add_argument("--credential", help="Name of a credential for servers the inventory gives none.")

    def handle(self, path, dry_run, format, credential, **options):
        import sys

        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8-sig").read()
        except OSError as exc:
            raise CommandError(f"{path}: cannot read it ({exc.strerror}).") from None
        default_credential = None
        if credential:
            default_credential = Credential.objects.filter(name=credential).first()
            if default_credential is None:
                raise CommandError(f"No credential named {credential!r}.")
        try:
            inventory = parse_inventory(text, "stdin" if path == "-" else path, format)
            plan = plan_import(inventory, read_key_files=True, default_credential=default_credential)
        except InventoryError as exc:
            raise CommandError(str(exc)) from None
        for item in plan.groups:
            self.stdout.write(f"group  {item['action']:<9} {item['name']}" + (f"  children: {', '.join(item['children'])}" if item["children"] else ""))
        for item in plan.servers:
            fields = item["fields"]
            extra = f"  groups: {', '.join(item['groups'])}" if item["groups"] else ""
            self.stdout.write(f"server {item['action']:<9} {item['name']}  {fields['user']}@{fields['address']}:{fields['port']}{extra}")
        for item in plan.credentials:
            self.stdout.write(f"credential create {item['name']} ({item['kind']})")
        for warning in plan.warnings:
            self.stderr.write(f"warning: {warning}")
        counts = plan.counts
        summary = (f"{counts['servers_created']} server(s) to create, {counts['servers_updated']} to update, "
                   f"{counts['groups_created']} group(s) to create, {counts['groups_updated']} to update")
        if dry_run:
            self.stdout.write(f"Dry run: {summary}. Nothing was changed.")
            return
        with acting_as(user=None, source="cli"):
            apply_import(plan)
        self.stdout.write(self.style.SUCCESS(f"Imported: {summary.replace('to create', 'created').replace('to update', 'updated')}."))
