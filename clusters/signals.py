"""What clusters tell the apps built on them, without importing them (arrows point down).

`clusters` never imports `deployments` or `labs`. When a probe has stored what it saw on a
cluster, it sends one of these signals; an app that keeps state derived from the cluster
(deployments refreshes its services' observed state) connects a receiver in its
AppConfig.ready(). Receivers run in the probe's process and transaction, in order; an
exception in one is the probe's exception (Signal.send, not send_robust).
"""

from django.dispatch import Signal

# A Docker or Swarm engine was observed and stored on its Cluster.
# Keyword arguments: cluster, observed (the engine's observation, a dict), now (its time).
engine_observed = Signal()

# A Kubernetes cluster was observed and stored on its Cluster.
# Keyword arguments: cluster, service_pods ({service id: [pod rows]}), now, autoscalers
# ([HPA rows], clusters.kubernetes.observe.hpa_row), namespaces ([{name, pods, pods_ready,
# restarts, cpu_cores, memory_bytes}]: cpu/memory None without metrics-server), ctx (the
# job's context, or None for the periodic probe: register secrets with ctx.add_secret).
kubernetes_observed = Signal()
