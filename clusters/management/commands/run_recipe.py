"""manage.py run_recipe PATH --limit HOSTS_OR_GROUPS [--check]: a recipe or playbook as a job, here and now.

PATH is a playbook file, a project folder (a playbook with its roles/, group_vars/,
files/...: --playbook names which one when there are several), a .zip or .tar.gz of
such a folder, or a built-in recipe's name. The native engine runs what it can;
ansible-runner runs the rest, in the same job (its first line says which and why).

The job is recorded like any other (it shows on the panel's pages) but runs in this
process, so a script sees its live log on standard output and its outcome in the exit
status: 0 when every host succeeded, 1 otherwise.
"""

import threading
import time
from pathlib import Path

from django.core.management.base import CommandError
from django.db import connection
from rest_framework.exceptions import ValidationError

from clusters.recipes import builtin_names
from clusters.recipes.project import encode_archive
from panel.audit.context import acting_as
from panel.jobs.kinds import get_kind
from panel.jobs.models import Job, JobEvent, Status
from panel.jobs.runner import execute
from panel.lib.commands import PanelCommand


class Command(PanelCommand):
    help = "Run a recipe or a simple Ansible playbook on servers or groups, print its live log and recap."

    def add_arguments(self, parser):
        parser.add_argument("path", help=f"A playbook or recipe file, a project folder (or its .zip / .tar.gz), or a built-in recipe "
                                         f"({', '.join(builtin_names())}).")
        parser.add_argument("--playbook", default="", help="In a project folder or archive: the playbook to run (default: site.yml, "
                                                          "playbook.yml, main.yml or the only one).")
        parser.add_argument("--tags", "-t", default="", help="Only tasks with these tags (comma-separated), as ansible-playbook --tags.")
        parser.add_argument("--skip-tags", default="", help="Skip tasks with these tags (comma-separated).")
        parser.add_argument("--limit", "-l", required=True, help="Server and group names, comma-separated (web,db01,!web03; all).")
        parser.add_argument("--check", "-C", action="store_true", help="Dry run: report what would change, change nothing.")
        parser.add_argument("--forks", "-f", type=int, default=None, help="Hosts worked on at once (default 20).")
        parser.add_argument("--extra-vars", "-e", action="append", default=[], metavar="KEY=VALUE", help="A variable for the recipe (repeatable).")

    def handle(self, path, limit, check, forks, extra_vars, playbook="", tags="", skip_tags="", **options):
        params = {"limit": limit, "check": check, "variables": _variables(extra_vars),
                  "tags": _words(tags), "skip_tags": _words(skip_tags), "playbook_file": playbook}
        if forks:
            params["forks"] = forks
        if not Path(path).exists() and path in builtin_names():
            params["recipe"] = path
        elif path.endswith((".zip", ".tar.gz", ".tgz", ".tar")) and Path(path).is_file():
            params["project"] = encode_archive(Path(path).read_bytes())
        else:
            params["path"] = str(Path(path).resolve())
        kind = get_kind("recipe-run")
        try:
            cleaned = kind.validate(params, context={"user": None, "cli": True})
        except ValidationError as exc:
            raise CommandError(_errors(exc.detail)) from None
        with acting_as(user=None, source="cli"):
            job = Job.objects.create(kind=kind.name, queue=kind.queue, params=cleaned, timeout=kind.timeout)
        self.stdout.write(f"Job #{job.pk}: {kind.label} on {len(cleaned['servers'])} server(s)")
        printer = _Printer(job.pk, self.stdout)
        printer.start()
        try:
            execute(job.pk)
        finally:
            printer.stop()
        job.refresh_from_db()
        if job.status != Status.SUCCEEDED:
            raise CommandError(f"Job #{job.pk} {job.status}: {job.error}")


def _words(text):
    return [word.strip() for word in (text or "").split(",") if word.strip()]


def _variables(pairs):
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--extra-vars takes KEY=VALUE, not {pair!r}.")
        variables[key] = value
    return variables


def _errors(detail):
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_errors(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "\n".join(_errors(item) for item in detail)
    return str(detail)


class _Printer(threading.Thread):
    """Prints the job's lines as they are written (the job batches them every 0.25 s)."""

    def __init__(self, job_id, out):
        super().__init__(daemon=True)
        self.job_id, self.out, self.after = job_id, out, 0
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.is_set():
                self.drain()
                self.done.wait(0.2)
            self.drain()
        finally:
            connection.close()

    def drain(self):
        for event in JobEvent.objects.filter(job_id=self.job_id, seq__gt=self.after).order_by("seq"):
            self.after = event.seq
            parts = [part for part in (event.host and f"[{event.host}]", event.task and f"{event.task}:", event.outcome and event.outcome.upper()) if part]
            self.out.write(" ".join(parts + [event.text]))

    def stop(self):
        time.sleep(0.05)
        self.done.set()
        self.join(timeout=10)
