"""manage.py import_compose PATH --cluster NAME [--project NAME] [--registry HOST/PATH --registry-credential NAME] [--dry-run]

PATH is a compose file or the project folder holding it (compose.yaml, docker-compose.yml...);
build contexts, env files, secret and config files are read relative to it."""

import os

from django.core.management.base import CommandError

from clusters.models import Cluster
from clusters.models import Credential
from deployments.builds import find_compose_file
from deployments.compose import ComposeError, apply_plan, check_target, parse_compose, read_env_file
from panel.audit.context import acting_as
from panel.audit.models import Action
from panel.audit.recorder import record
from panel.lib.commands import PanelCommand


class Command(PanelCommand):
    help = (
        "Import a compose file as the services of one project on a Docker or Swarm cluster, print the "
        "preview, and deploy the project as a stack (unless --dry-run). Variables come from this "
        "command's environment and the .env file beside the compose file."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The compose file, or the project folder holding compose.yaml / docker-compose.yml and its build contexts")
        parser.add_argument("--cluster", required=True, help="Name of the Docker or Swarm cluster to deploy onto")
        parser.add_argument("--project", help="Project name (default: the file's `name:` or its folder's name)")
        parser.add_argument("--registry", help="Registry (host:port/path) to push the images of services built from source to; needed on Swarm")
        parser.add_argument("--registry-credential", help="Name of the registry credential to push and pull those images with")
        parser.add_argument("--dry-run", action="store_true", help="Print the preview only; save and deploy nothing")
        parser.add_argument("--no-deploy", action="store_true", help="Save the services but do not start the deploy job")

    def handle(self, path, cluster, project, dry_run, no_deploy, registry=None, registry_credential=None, **options):
        try:
            target = Cluster.objects.get(name=cluster)
        except Cluster.DoesNotExist:
            known = ", ".join(Cluster.objects.filter(kind__in=("docker", "swarm")).values_list("name", flat=True)) or "none"
            raise CommandError(f"No cluster named {cluster!r}. Docker and Swarm clusters: {known}.") from None
        if target.kind not in ("docker", "swarm"):
            raise CommandError(f"Cluster {cluster} is a {target.get_kind_display()}; compose files deploy onto Docker or Swarm clusters.")
        credential = None
        if registry_credential:
            credential = Credential.objects.filter(name=registry_credential, kind="registry").first()
            if credential is None:
                known = ", ".join(Credential.objects.filter(kind="registry").values_list("name", flat=True)) or "none"
                raise CommandError(f"No registry credential named {registry_credential!r}. Registry credentials: {known}.")
        if os.path.isdir(path):
            found = find_compose_file(path)
            if found is None:
                raise CommandError(f"{path} holds no compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml.")
            path = found
        base_dir = os.path.dirname(os.path.abspath(path))
        variables = {}
        dotenv = os.path.join(base_dir, ".env")
        try:
            if os.path.exists(dotenv):
                variables.update(read_env_file(dotenv))
            variables.update(os.environ)  # the shell wins over .env, as with docker compose
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            plan = parse_compose(text, filename=path, project=project, variables=variables, base_dir=base_dir, registry=registry)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        except ComposeError as exc:
            raise CommandError(str(exc)) from None
        check_target(plan, target)
        self.stdout.write(plan.preview())
        if dry_run:
            self.stdout.write("Dry run: nothing was saved or deployed." + (f" Importing would be refused: {target} cannot run the file as written (see above)." if plan.problems else ""))
            return
        if plan.problems:
            raise CommandError(f"Nothing was saved: {target} cannot run this file as written:\n" + "\n".join(f"- {problem}" for problem in plan.problems))
        with acting_as(user=None, source="cli"):
            services = apply_plan(plan, target, registry_credential=credential)
            record(Action.OTHER, target, message=f"Imported {path} as project {plan.project} ({len(services)} services)")
            self.stdout.write(f"Saved {len(services)} service(s) in project {plan.project} on {target}.")
            if no_deploy:
                return
            from panel.jobs.services import start_job
            from panel.accounts.models import User

            job = start_job("stack-deploy", {"project": plan.project}, _cli_user(User), target=target)
        self.stdout.write(f"Deploy job #{job.pk} started (stack-deploy); follow it at /jobs/{job.pk}/.")


def _cli_user(User):
    """Jobs need a user with the operator role to be allowed; the command line acts as the first admin."""
    user = User.objects.filter(role="admin", is_active=True).order_by("pk").first()
    if user is None:
        raise CommandError("No active admin user to start the deploy job as (manage.py ensure_admin creates one), or use --no-deploy.")
    return user
