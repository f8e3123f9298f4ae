"""Names and labels that tie engine objects to the panel's services and releases.

Every container, Swarm service, network, volume and Docker secret the panel creates
carries these labels, so "what belongs to service X" is always one label filter away,
and "remove leaves nothing behind" can be checked by label:

- `filrouge.managed=1`            on everything the panel created
- `filrouge.project=<project>`    the compose project / stack the service belongs to
- `filrouge.service=<name>`       the service (unique within its project)
- `filrouge.release=<revision>`   containers and Swarm tasks: the release they run
- `filrouge.replica=<n>`          Docker-host containers: the replica slot (1..replicas)

Names: containers `<project>-<service>-r<revision>-<n>`, the project's network
`filrouge-<project>` (a bridge on a Docker host, an attachable overlay on Swarm), named
volumes `<project>_<volume>`, Swarm services `<project>_<service>` (as `docker stack`
names them).
"""

MANAGED = "filrouge.managed"
PROJECT = "filrouge.project"
SERVICE = "filrouge.service"
RELEASE = "filrouge.release"
REPLICA = "filrouge.replica"


def project_labels(project):
    return {MANAGED: "1", PROJECT: project}


def service_labels(service):
    return {MANAGED: "1", PROJECT: service.project, SERVICE: service.name}


def release_labels(service, revision):
    return {**service_labels(service), RELEASE: str(revision)}


def label_filter(labels):
    """The engine's list filter for all of these labels: {"label": ["k=v", ...]}."""
    return {"label": [f"{key}={value}" for key, value in labels.items()]}


def container_name(service, revision, replica):
    return f"{service.project}-{service.name}-r{revision}-{replica}"


def network_name(project):
    return f"filrouge-{project}"


def volume_name(project, source):
    return f"{project}_{source}"


def swarm_service_name(service):
    return f"{service.project}_{service.name}"


def is_named_volume(source):
    """A named volume ("data"), as opposed to a bind mount of a host path ("/srv/data")."""
    return not source.startswith(("/", ".", "~"))
