"""What every environment provider offers. Providers run only inside jobs.

A provider builds, checks and tears down one student environment on its target:
- `environment` is a labs.models.Environment: `.id`, `.owner` (User), `.exercise`
  (`.target` in docker/kubernetes/ssh, `.start` dict: what to create at start,
  `.quota` dict: cpu, memory, pods, ports...), `.course` (`.clusters`: where it runs),
  `.cluster` (the Cluster chosen for it), `.labels()` -> dict of labels every object it
  creates must carry (filrouge.env=<id>, filrouge.owner=<user id>, filrouge.exercise=<id>);
- `ctx` is the job context (ctx.line(...), ctx.progress(...), ctx.add_secret(...)).

`create()` returns the access dict shown to the student (kubeconfig, endpoint and ports,
ssh host/port/user); the caller stores it encrypted. `destroy()` removes everything that
carries the environment's labels and is idempotent. `check_target()` returns what the
checks need to observe the environment from outside (labs/checks/base.py).
"""

from abc import ABC, abstractmethod


class Provider(ABC):
    target = ""

    def __init__(self, environment, ctx):
        self.environment = environment
        self.ctx = ctx

    @abstractmethod
    def create(self) -> dict:
        """Build the environment; return the student's access dict."""

    @abstractmethod
    def destroy(self):
        """Remove everything labelled as the environment's. Safe to call twice."""

    def reset(self) -> dict:
        self.destroy()
        return self.create()

    def extended(self):
        """The environment got more time (expires_at is already the new one). Return a new access
        dict when what the student holds must follow (a token that would expire first), else None."""
        return None

    @abstractmethod
    def check_target(self):
        """A labs.checks.base.CheckTarget for this environment (use it in a `with`)."""
