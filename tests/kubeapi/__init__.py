"""A stateful Kubernetes API stand-in server for tests.

Start it, point the official ``kubernetes`` client at it, and it behaves like
a small cluster: discovery, CRUD with API conventions, server-side apply,
watches, controllers for Deployments/ReplicaSets/Pods, RBAC, quotas and TLS.
See README.md in this directory for what is and is not emulated.
"""

from .standin import KubeStandin

__all__ = ["KubeStandin"]
