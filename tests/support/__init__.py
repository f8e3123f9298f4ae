"""Test support: real services (Docker images, an image registry, sshd hosts) for
Filrouge's integration tests.

Nothing here is a mock: each helper starts the real program so that tests exercise the
same code paths as production. See README.md in this folder for timings and for what a
new machine needs.
"""
