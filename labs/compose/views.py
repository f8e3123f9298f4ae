"""The student's way to work on a Docker environment: submit a compose file to run in it.

The page shows what the student was given (project, network, host and ports, the port
variables to use), a form for the file, and the runs so far. Submitting validates the
file with the guard (refusals are shown with their line, nothing is queued) and starts a
`lab-compose` job, whose live page the student is sent to. Only the environment's owner
(or an admin) may submit; a teacher of the course sees the page read-only; anyone else
gets 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404
from panel.jobs.models import Job
from panel.jobs.services import start_job

from labs.compose.guard import port_variable
from labs.compose.jobs import environment_ports
from labs.models import Environment, EnvironmentState

EXAMPLE = """services:
  web:
    image: filrouge-lab/busybox:1
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports:
      - "${%(variable)s}:8080"
"""


def compose_context(environment, user):
    ports = environment_ports(environment)
    jobs = Job.objects.for_target(environment).filter(kind="lab-compose").order_by("-created_at")
    return {
        "environment": environment,
        "ports": [{"name": name, "port": port, "variable": port_variable(name), "usage": "${%s}:CONTAINER_PORT" % port_variable(name)} for name, port in sorted(ports.items())],
        "access": environment.access if environment.state == EnvironmentState.READY else {},
        "jobs": jobs[:10],
        "can_submit": environment.owner_id == user.pk or user.is_admin,
        "is_ready": environment.state == EnvironmentState.READY,
    }


def last_compose(environment):
    job = Job.objects.for_target(environment).filter(kind="lab-compose").order_by("-created_at").first()
    return (job.params or {}).get("compose", "") if job else ""


@login_required
def environment_compose(request, pk):
    environment = get_visible_or_404(Environment.objects.select_related("exercise", "exercise__course", "owner", "cluster"), request.user, pk=pk)
    if environment.exercise.target != "docker":
        return redirect(environment_page(environment))
    context = compose_context(environment, request.user)
    text = last_compose(environment) or EXAMPLE % {"variable": context["ports"][0]["variable"] if context["ports"] else "PORT_WEB"}
    problems = []
    if request.method == "POST":
        if not context["can_submit"]:
            raise PermissionDenied(_("Only the student who owns this environment can run files in it."))
        text = request.POST.get("compose", "")
        try:
            job = start_job("lab-compose", {"compose": text, "filename": "compose.yaml"}, request.user, target=environment)
        except ValidationError as exc:
            problems = _problems(exc.detail)
        else:
            messages.info(request, _("Running your compose file (job #%(job)s).") % {"job": job.pk})
            return redirect("jobs:detail", job.pk)
    context.update({"compose": text, "problems": problems, "back": environment_page(environment)})
    return render(request, "labs/environment_compose.html", context, status=400 if problems else 200)


def environment_page(environment):
    """The environment's own page when labs-core provides one, else this page."""
    from django.urls import NoReverseMatch, reverse

    for name in ("labs:environment", "labs:environment-detail", "labs:environment_detail"):
        try:
            return reverse(name, args=[environment.pk])
        except NoReverseMatch:
            continue
    return reverse("labs:environment-compose", args=[environment.pk])


def _problems(detail):
    if isinstance(detail, dict):
        return [item for value in detail.values() for item in _problems(value)]
    if isinstance(detail, list):
        return [item for value in detail for item in _problems(value)]
    return [str(detail)]
