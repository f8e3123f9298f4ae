"""The check registry, the result of a check, and what checks look at.

A check type is a function registered with `@check("type", schema={...})`:
`(params: dict, target: CheckTarget) -> Outcome`. It observes the environment through
the target's connections (Docker engine, Kubernetes API, SSH session, HTTP) and never
trusts anything the student wrote about the result. `validate_params(type, params)` is
called when an exercise file is loaded, so a typo is refused with its file and line
before any student starts.
"""

from dataclasses import dataclass, field

CHECKS = {}
SCHEMAS = {}


@dataclass
class Outcome:
    passed: bool
    detail: str = ""  # what was observed, e.g. "readyReplicas is 1, needs >= 2"


@dataclass
class CheckTarget:
    """What the checks of one environment may observe. Fields unused by a target stay None."""

    environment: object
    docker: object = None        # clusters.drivers.docker.EngineConnection
    kube: object = None          # kubernetes.client.ApiClient with the panel's (admin) rights
    namespace: str = ""          # the environment's namespace on Kubernetes
    ssh: object = None           # clusters.drivers.ssh session to the student's host (as root)
    http_base: str = ""          # where HTTP checks are sent when they give a relative path
    labels: dict = field(default_factory=dict)
    cleanup: list = field(default_factory=list)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for close in reversed(self.cleanup):
            close()


def check(name, schema=None):
    """Register a check type. `schema`: {param: (type, required)} used to validate exercise files."""

    def register(function):
        CHECKS[name] = function
        SCHEMAS[name] = schema or {}
        return function

    return register
