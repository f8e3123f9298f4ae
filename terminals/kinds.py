"""What a terminal can open into, and who may: one small class per kind, chosen by name.

A kind turns the handshake's parameters into a `Target` after checking the user's right
to it (through the models' `visible_to`), and says who may watch or replay. The kinds of
the inventory (servers, Docker containers, Kubernetes pods, the workspace pods of isolated
namespaces) live here; labs registers
its environments with `register` from its own app (imports point down: labs uses
terminals, never the reverse).

`Target.open(cols, rows)` runs in a worker thread of the web process and returns a
driver session (clusters.drivers: ssh.open_session, docker.open_exec_session,
kubernetes.open_exec_session): the drivers stay the only code that talks to machines.
"""

import abc
from dataclasses import dataclass, field
from typing import Callable

from django.db.models import Q
from django.utils.translation import gettext as _

KINDS = {}


class Refused(Exception):
    """The handshake is refused: `message` says why (it goes to the audit log), `obj` is
    what was asked for when it exists."""

    def __init__(self, message, obj=None):
        super().__init__(message)
        self.message = message
        self.obj = obj


@dataclass
class Target:
    kind: str
    label: str
    obj: object
    ref: dict
    opener: Callable  # (cols, rows, add_secret) -> driver session; called in a thread
    secrets: list = field(default_factory=list)
    choices: dict = field(default_factory=dict)  # what the page may offer to pick (a pod's containers)

    def open(self, cols, rows):
        """Open the driver session (in a worker thread: it may pin a host key in the database)."""
        from django.db import close_old_connections, connection

        close_old_connections()
        try:
            return self.opener(cols, rows, self.secrets.append)
        finally:
            connection.close()  # this thread is not a request: leave no connection behind


class TerminalKind(abc.ABC):
    name = ""

    @abc.abstractmethod
    def resolve(self, user, params):
        """A Target for these handshake parameters, or raise Refused."""

    def can_watch(self, user, session):
        """May `user` join `session` (a TerminalSession row of this kind) read-only?"""
        return bool(getattr(user, "is_admin", False))

    def visible_sessions(self, user):
        """A Q of the sessions of this kind `user` may list and replay besides their own."""
        return None

    def object_visible(self, user, object_id):
        """May `user` list the sessions opened into this object (the session list's filter)?"""
        return bool(getattr(user, "is_admin", False))


def register(kind_class):
    KINDS[kind_class.name] = kind_class()
    return kind_class


def get(name):
    return KINDS.get(name)


def extra_visible_sessions(user):
    query = Q(pk__in=[])
    for kind in KINDS.values():
        extra = kind.visible_sessions(user)
        if extra is not None:
            query |= extra
    return query


def _int(params, name, message):
    """The integer parameter `name`, or Refused(message): a whole sentence, translated by the caller."""
    try:
        return int(params.get(name, ""))
    except (TypeError, ValueError):
        raise Refused(message) from None


def _operator(user, what):
    if not getattr(user, "is_operator", False):
        raise Refused(_("Only operators open terminals on %(what)s.") % {"what": what})


@register
class ServerKind(TerminalKind):
    """A login shell over SSH (the server's credential, pinned host key, sudo when `become`)."""

    name = "server"

    def resolve(self, user, params):
        from clusters.models import Server

        _operator(user, _("servers"))
        server = Server.objects.visible_to(user).select_related("credential", "jump_host").filter(pk=_int(params, "server", _("The terminal address lacks a valid server."))).first()
        if server is None:
            raise Refused(_("No such server."))
        become = params.get("become", "1" if server.become else "0") == "1"

        def opener(cols, rows, add_secret):
            from clusters.drivers import ssh
            from clusters.inventory.targets import build_target

            target = build_target(server, add_secret, user)
            return ssh.open_session(target, cols, rows, become=become)

        label = f"{server.name} ({server.user}@{server.address}:{server.port})" + (" [sudo]" if become else "")
        return Target(self.name, label, server, {"server": server.pk, "become": become}, opener)


def _cluster(user, params, kinds):
    from clusters.models import Cluster

    cluster = Cluster.objects.visible_to(user).select_related("credential", "server").filter(pk=_int(params, "cluster", _("The terminal address lacks a valid cluster.")), kind__in=kinds).first()
    if cluster is None:
        raise Refused(_("No such cluster."))
    return cluster


def _secrets_of(cluster, add_secret):
    if cluster.credential is not None:
        for value in cluster.credential.secret_values():
            add_secret(value)


@register
class ContainerKind(TerminalKind):
    """A shell in a running container of a Docker engine or Swarm (an exec with a TTY)."""

    name = "container"

    def resolve(self, user, params):
        _operator(user, _("containers"))
        cluster = _cluster(user, params, ("docker", "swarm"))
        container = str(params.get("container", ""))[:128]
        if not container or not container.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise Refused(_("The terminal address lacks a valid container."), cluster)

        def opener(cols, rows, add_secret):
            from clusters.drivers import docker

            _secrets_of(cluster, add_secret)
            return docker.open_exec_session(cluster, container, cols, rows)

        return Target(self.name, f"container {container[:12]} on {cluster.name}", cluster, {"cluster": cluster.pk, "container": container}, opener)


def observed_pod(cluster, namespace, pod):
    """The pod's row in the cluster's last observation (containers, default container), or None."""
    for row in (cluster.observed or {}).get("pods") or []:
        if row.get("namespace") == namespace and row.get("name") == pod:
            return row
    return None


@register
class PodKind(TerminalKind):
    """A shell in a pod's container over the Kubernetes API's exec websocket.

    The containers offered (and checked at the handshake) are those the cluster's last
    observation stored; a pod not observed yet is checked by the API when the shell opens."""

    name = "pod"

    def resolve(self, user, params):
        _operator(user, _("pods"))
        cluster = _cluster(user, params, ("kubernetes",))
        namespace, pod, container = (str(params.get(key, ""))[:253] for key in ("namespace", "pod", "container"))
        if not namespace or not pod:
            raise Refused(_("The terminal address lacks a namespace and a pod."), cluster)
        observed = observed_pod(cluster, namespace, pod)
        choices = {}
        if observed is not None:
            names = observed.get("containers") or []
            if container and container not in names:
                raise Refused(_("The pod %(pod)s has no container %(container)s; it has: %(names)s.")
                              % {"pod": f"{namespace}/{pod}", "container": container, "names": ", ".join(names)}, cluster)
            container = container or observed.get("default_container") or (names[0] if names else "")
            choices = {"containers": names, "container": container}

        def opener(cols, rows, add_secret):
            from clusters.drivers import kubernetes

            _secrets_of(cluster, add_secret)
            return kubernetes.open_exec_session(cluster, namespace, pod, container, cols, rows)

        label = f"pod {namespace}/{pod}" + (f" ({container})" if container else "") + f" on {cluster.name}"
        return Target(self.name, label, cluster, {"cluster": cluster.pk, "namespace": namespace, "pod": pod, "container": container}, opener,
                      choices=choices)


@register
class WorkspaceKind(TerminalKind):
    """A shell in the workspace pod of an isolated namespace (kubectl, the namespace's rights only).

    Its owner and operators open it; the shell is exec'd with the namespace's own kubeconfig,
    so it can do nothing the namespace's ServiceAccount may not, whoever opened it."""

    name = "workspace"

    def resolve(self, user, params):
        from clusters.models import IsolatedNamespaceRecord

        pk = _int(params, "isolated", _("The terminal address lacks a valid isolated namespace."))
        record = IsolatedNamespaceRecord.objects.visible_to(user).select_related("cluster").filter(pk=pk).first()
        if record is None:
            raise Refused(_("No such isolated namespace."))
        if not record.workspace:
            raise Refused(_("This isolated namespace has no workspace pod."), record)
        if record.state != "ready":
            raise Refused(_("The isolated namespace is %(state)s, not ready.") % {"state": record.get_state_display()}, record)

        def opener(cols, rows, add_secret):
            from clusters.kubernetes.workspace import open_shell

            kubeconfig = record.get_kubeconfig() if record.token_valid else {}
            return open_shell(record.cluster, record.name, kubeconfig, cols, rows, add_secret,
                              missing_message=_("There is no workspace pod in %(namespace)s any more: bring the isolated namespace up to date to get a new one.")
                              % {"namespace": record.name})

        return Target(self.name, f"workspace {record.name} on {record.cluster.name}", record, {"isolated": record.pk}, opener)

    def object_visible(self, user, object_id):
        from clusters.models import IsolatedNamespaceRecord

        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            return False
        return IsolatedNamespaceRecord.objects.visible_to(user).filter(pk=pk).exists()
