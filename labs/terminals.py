"""Lab environments as terminal targets (registered with terminals.kinds at start).

- SSH exercises: the student's own Debian host. The panel logs in with the environment's
  panel key (root, pinned host key) and starts `su - <student user>`: the student gets
  their login shell, as if they had used their own key; a teacher gets the same shell.
- Docker exercises: a shell in one of the environment's running containers (only
  containers labelled with this environment; `member` picks one by service or name).
- Kubernetes exercises: a shell in the namespace's workspace pod (clusters/kubernetes/
  workspace.py: kubectl, running as the namespace's ServiceAccount), exec'd with the
  namespace's own kubeconfig from the environment's access, never the cluster's
  credential: even through the panel, the shell cannot act outside the namespace. An
  exercise with `start: {workspace: false}` has none, and the terminal says so.

Who: the environment's owner, and the teachers of its course (and admins). Teachers may
also watch a student's live terminal read-only and replay their recordings.
"""

import shlex

from django.db.models import Q
from django.utils.translation import gettext as _

from terminals.kinds import Refused, Target, TerminalKind, register


@register
class LabEnvironmentKind(TerminalKind):
    name = "lab"

    def resolve(self, user, params):
        from .models import Environment, EnvironmentState

        try:
            pk = int(params.get("environment", ""))
        except (TypeError, ValueError):
            raise Refused(_("The terminal address lacks a valid environment.")) from None
        environment = Environment.objects.visible_to(user).select_related("exercise__course", "owner", "cluster").filter(pk=pk).first()
        if environment is None:
            raise Refused(_("No such environment (or it is another student's)."))
        if environment.owner_id != user.pk and not environment.course.is_taught_by(user):
            raise Refused(_("Only the environment's student and the course's teachers open its terminal."), environment)
        if environment.state != EnvironmentState.READY:
            raise Refused(_("The environment is %(state)s, not ready.") % {"state": environment.get_state_display()}, environment)
        target = environment.exercise.target
        member = str(params.get("member", ""))[:128]
        label = f"{environment.exercise.slug} / {environment.owner.username}"
        if target == "ssh":
            opener = _ssh_opener(environment)
        elif target == "docker":
            opener = _docker_opener(environment, member)
            label += f" ({member})" if member else ""
        elif target == "kubernetes":
            from .providers.kubernetes import wants_workspace

            if not wants_workspace(environment.exercise):
                raise Refused(_("This exercise has no workspace pod: use the kubeconfig from this page with your own kubectl."), environment)
            opener = _workspace_opener(environment)
        else:
            raise Refused(_("This exercise has no terminal."), environment)
        return Target(self.name, label, environment, {"environment": environment.pk, "member": member}, opener)

    def can_watch(self, user, session):
        from .models import Environment

        environment = Environment.objects.select_related("exercise__course").filter(pk=session.object_id or 0).first()
        return environment is not None and environment.course.is_taught_by(user)

    def visible_sessions(self, user):
        if not getattr(user, "is_teacher", False):
            return None
        from .models import Environment

        ids = [str(pk) for pk in Environment.objects.filter(exercise__course__teachers=user).values_list("pk", flat=True)]
        return Q(kind=self.name, object_id__in=ids)

    def object_visible(self, user, object_id):
        """The environment's student and its course's teachers (and admins) list its sessions."""
        from .models import Environment

        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return False
        return Environment.objects.visible_to(user).filter(pk=pk).exists()


def _ssh_opener(environment):
    def opener(cols, rows, add_secret):
        from clusters.drivers.base import DriverError
        from clusters.drivers.ssh import SshTarget, open_session
        from clusters.models import Credential

        from .providers.ssh import SSHProvider

        credential = Credential.objects.filter(name=SSHProvider(environment, None).credential_name).first()
        if credential is None:
            raise DriverError(_("This environment has no panel key any more: reset it to open a terminal."))
        secret, public = credential.get_secret(), credential.public
        for value in credential.secret_values():
            add_secret(value)
        user = (environment.exercise.start or {}).get("user") or "student"
        target = SshTarget(name=environment.name, address=public["address"], port=public["panel_port"], user="root",
                           private_key=secret["private_key"], pinned_host_key=public["panel_host_key"])
        return open_session(target, cols, rows, command=f"exec su - {shlex.quote(user)}")

    return opener


def _docker_opener(environment, member):
    def opener(cols, rows, add_secret):
        from clusters.drivers import docker
        from clusters.drivers.base import NotFound

        from .providers.docker_project import SERVICE_LABEL, label_filters

        cluster = environment.cluster
        if cluster is None:
            raise NotFound(_("This environment has no Docker host."))
        if cluster.credential is not None:
            for value in cluster.credential.secret_values():
                add_secret(value)
        rows_found = docker.running_containers(cluster, label_filters(environment))
        if member:
            rows_found = [row for row in rows_found if member in (row[1], row[2].get(SERVICE_LABEL))]
        if not rows_found and member:
            raise NotFound(_("No running container of this environment is named %(member)s: start your services first (Run my compose file).")
                           % {"member": member})
        if not rows_found:
            raise NotFound(_("No running container of this environment: start your services first (Run my compose file)."))
        return docker.open_exec_session(cluster, rows_found[0][0], cols, rows)

    return opener


def _workspace_opener(environment):
    def opener(cols, rows, add_secret):
        from clusters.drivers.base import NotFound
        from clusters.kubernetes.workspace import open_shell

        access = environment.access or {}
        namespace = access.get("namespace") or environment.name
        if environment.cluster is None:
            raise NotFound(_("This environment has no Kubernetes cluster."))
        return open_shell(environment.cluster, namespace, access.get("kubeconfig") or "", cols, rows, add_secret,
                          missing_message=_("There is no workspace pod in %(namespace)s any more: reset the environment to get a new one.")
                          % {"namespace": namespace})

    return opener
