"""The Kubernetes backend (backend.py), the objects it renders (render.py) and observed state (probe.py)."""
