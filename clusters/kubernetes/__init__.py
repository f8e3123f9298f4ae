"""Kubernetes clusters: cluster input, observe, rollout, manifests and isolated namespaces."""
