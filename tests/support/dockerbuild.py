"""Building images from an in-memory context, skipped when the input hash is known.

Why: a tag that embeds a hash of every build input is a cache key that survives across
test runs and sessions on the same machine: if the tag exists, the image is exactly what
the inputs would build, so the build is skipped (a warm run costs one API call).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def inputs_hash(files: dict[str, bytes]) -> str:
    """Short, stable hash of a build's inputs (file name -> content)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:12]


def image_exists(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build_context(
    client, tag: str, files: dict[str, bytes], extra_tags=(), executable=()
) -> None:
    """Build `tag` from an in-memory context unless it exists; then add extra tags.

    `files` maps context paths to contents; those named in `executable` get mode 0755.
    A failed build raises docker.errors.BuildError (its build_log says why).
    """
    if not image_exists(client, tag):
        with tempfile.TemporaryDirectory(prefix="filrouge-build-") as ctx:
            for name, content in files.items():
                path = Path(ctx, name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                if name in executable:
                    path.chmod(0o755)
            client.images.build(path=ctx, tag=tag, rm=True, forcerm=True)
    image = client.images.get(tag)
    for extra in extra_tags:
        repo, _, extra_tag = extra.rpartition(":")
        image.tag(repo, extra_tag)
