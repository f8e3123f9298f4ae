"""Services built from source (compose `build:`): their context archives and their images.

The life of a build, as `docker compose` does it against a remote engine:
- at import, each `build.context` folder becomes a tar archive (`.dockerignore` honoured,
  entries sorted, times and owners zeroed, so the same sources give the same bytes);
  its sha256 names it (`build.context` in the spec) and the image tag is derived from it
  and from the Dockerfile, args and target (`b<12 hex>`): a source change is a new tag;
- the archive is stored encrypted with the service (models.BuildContext), so a redeploy
  or a rollback, which re-applies a release's spec, can build the same image again;
- at deploy, the job sends the archive to the target engine's build API (the docker SDK's
  low-level `build(fileobj=..., custom_context=True)`), streams the build output into the
  job log, and on Swarm (or whenever the repository names a registry) pushes the image
  with the service's registry credential. An image already on the engine under that tag
  is not built again (same sources); Swarm still pushes it, so the registry has it.

Uploaded project archives are unpacked here too, refusing anything that would land
outside the folder (absolute names, `..`, links leaving it, devices).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile

from django.conf import settings

CONTEXT_PREFIX = "sha256:"


class ArchiveError(ValueError):
    """An uploaded archive or a build context that cannot be used; the message says why."""


# ---- build contexts ------------------------------------------------------------------------

def read_dockerignore(directory):
    path = os.path.join(directory, ".dockerignore")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle.read().splitlines() if line.strip() and not line.lstrip().startswith("#")]


def context_archive(directory, dockerfile="Dockerfile"):
    """(tar bytes, "sha256:<hex>") of a build context folder, as `docker build` would send it.

    `.dockerignore` is applied by the docker SDK's own matcher (the Dockerfile and the
    .dockerignore itself are always sent, as the CLI does). Symbolic links are archived as
    links, never followed, so nothing outside the folder is read.
    """
    from docker.utils.build import exclude_paths

    if not os.path.isdir(directory):
        raise ArchiveError(f"the build context {directory} is not a folder")
    paths = sorted(exclude_paths(directory, read_dockerignore(directory), dockerfile=dockerfile))
    limit = settings.BUILD_CONTEXT_MAX_BYTES
    buffer = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for relative in paths:
            full = os.path.join(directory, relative)
            info = archive.gettarinfo(full, arcname=relative.replace(os.sep, "/"))
            if info is None:  # sockets and the like are not sent
                continue
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isreg():
                total += info.size
                if total > limit:
                    raise ArchiveError(f"the build context {directory} is larger than {limit // 1048576} MiB (FILROUGE_BUILD_CONTEXT_MAX_BYTES); add what the image does not need to .dockerignore")
                with open(full, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    data = buffer.getvalue()
    return data, CONTEXT_PREFIX + hashlib.sha256(data).hexdigest()


def image_tag(context_digest, dockerfile, args, target):
    """The per-content tag of a built image: the same sources and options give the same tag."""
    key = json.dumps([context_digest, dockerfile or "Dockerfile", args or {}, target or ""], sort_keys=True)
    return "b" + hashlib.sha256(key.encode()).hexdigest()[:12]


# ---- uploaded project archives -----------------------------------------------------------------

def extract_archive(upload, destination, name=""):
    """Unpack a .zip, .tar, .tar.gz or .tgz project into `destination` (an empty folder).

    Refuses absolute names, `..`, links pointing out of the folder, devices, and archives
    whose files add up to more than four build contexts' worth (FILROUGE_BUILD_CONTEXT_MAX_BYTES).
    """
    limit = settings.BUILD_CONTEXT_MAX_BYTES * 4
    name = (name or getattr(upload, "name", "") or "").lower()
    data = upload.read() if hasattr(upload, "read") else upload
    if name.endswith(".zip") or data[:4] == b"PK\x03\x04":
        _extract_zip(data, destination, limit)
    else:
        _extract_tar(data, destination, limit)


def _safe_name(member_name):
    cleaned = member_name.replace("\\", "/")
    parts = [part for part in cleaned.split("/") if part not in ("", ".")]
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":") or ".." in parts:
        raise ArchiveError(f"the archive entry {member_name!r} points outside the project folder (absolute or '..'); it was refused")
    return "/".join(parts)


def _extract_zip(data, destination, limit):
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ArchiveError("the upload is not a readable .zip archive") from None
    with archive:
        total = 0
        for info in archive.infolist():
            relative = _safe_name(info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"the archive entry {info.filename!r} is a symbolic link; zip archives may not carry links (use .tar.gz)")
            total += info.file_size
            if total > limit:
                raise ArchiveError(f"the archive unpacks to more than {limit // 1048576} MiB")
            if not relative:
                continue
            target = os.path.join(destination, relative)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as handle:
                handle.write(source.read())
            if mode & 0o111:
                os.chmod(target, 0o755)


def _extract_tar(data, destination, limit):
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError:
        raise ArchiveError("the upload is not a readable archive (.zip, .tar, .tar.gz or .tgz)") from None
    with archive:
        total = 0
        members = archive.getmembers()
        root = os.path.realpath(destination)
        for member in members:
            relative = _safe_name(member.name)
            if member.isdev() or member.isfifo():
                raise ArchiveError(f"the archive entry {member.name!r} is a device or pipe; it was refused")
            if member.issym() or member.islnk():
                link_base = os.path.dirname(os.path.join(root, relative)) if member.issym() else root
                landing = os.path.realpath(os.path.join(link_base, member.linkname))
                if os.path.isabs(member.linkname) or not (landing == root or landing.startswith(root + os.sep)):
                    raise ArchiveError(f"the archive entry {member.name!r} is a link to {member.linkname!r}, outside the project folder; it was refused")
            total += member.size
            if total > limit:
                raise ArchiveError(f"the archive unpacks to more than {limit // 1048576} MiB")
        # The "data" filter checks the same again (and drops owners and special bits).
        try:
            archive.extractall(destination, filter="data")
        except tarfile.FilterError as exc:
            raise ArchiveError(f"the archive was refused: {exc}") from None


def project_root(directory):
    """The folder holding the compose file: the upload's root, or its single top folder."""
    for name in COMPOSE_NAMES:
        if os.path.isfile(os.path.join(directory, name)):
            return directory
    entries = [entry for entry in os.listdir(directory) if not entry.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(directory, entries[0])):
        return project_root(os.path.join(directory, entries[0]))
    return directory


COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def find_compose_file(directory):
    for name in COMPOSE_NAMES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


# ---- storing contexts ---------------------------------------------------------------------------

def store_context(service, digest, archive):
    """Keep the archive with the service (encrypted), and drop contexts nothing names any more."""
    from panel.lib import crypto

    from .models import BuildContext

    if not BuildContext.objects.filter(service=service, digest=digest).exists():
        BuildContext.objects.create(service=service, digest=digest, size=len(archive), archive_encrypted=crypto.fernet().encrypt(archive))
    wanted = {((service.spec.get("build") or {}).get("context"))}
    for spec in service.releases.values_list("spec", flat=True):
        wanted.add(((spec or {}).get("build") or {}).get("context"))
    BuildContext.objects.filter(service=service).exclude(digest__in=[d for d in wanted if d]).delete()


def load_context(service, digest):
    """The archive bytes of a stored context (job code only)."""
    from clusters.drivers.base import NotFound
    from panel.lib import crypto

    from .models import BuildContext

    stored = BuildContext.objects.filter(service=service, digest=digest).first()
    if stored is None:
        raise NotFound(f"The build context {digest[:19]} of {service} is no longer stored. Import the compose project again to build it.")
    archive = crypto.fernet().decrypt(bytes(stored.archive_encrypted))
    if CONTEXT_PREFIX + hashlib.sha256(archive).hexdigest() != digest:
        raise NotFound(f"The stored build context {digest[:19]} of {service} does not match its digest. Import the compose project again.")
    return archive


# ---- at deploy ------------------------------------------------------------------------------------

def ensure_built(connection, service, spec, ctx, swarm=False, auth=None, nocache=False):
    """Make `spec`'s image exist on the engine (build it from the stored context if needed),
    and push it when the repository names a registry (always the case on Swarm).

    Returns "built" or "present". Raises DriverError subclasses with a message to act on."""
    from clusters.drivers import docker as driver
    from clusters.drivers.base import DriverError

    build = spec.get("build") or {}
    repository, tag = spec["image"], spec.get("tag", "latest")
    reference = f"{repository}:{tag}"
    registry = driver.image_registry(repository)
    if swarm and not registry:
        raise DriverError(
            f"{service} is built from source, but Swarm nodes can only run it from a registry. Import the project again "
            "with a registry (the import page's registry field, or import_compose --registry HOST/PATH) and a registry credential."
        )
    if not nocache and driver.image_present(connection, reference):
        ctx.ok(f"image {reference} is already built from these sources", task="build")
        outcome = "present"
    else:
        archive = load_context(service, build["context"])
        ctx.line(f"building {reference} from its {len(archive) // 1024} KiB context on {connection.description}", task="build")
        driver.build_image(connection, archive, reference, dockerfile=build.get("dockerfile") or "Dockerfile",
                           buildargs=build.get("args") or None, target=build.get("target") or None, nocache=nocache, ctx=ctx)
        outcome = "built"
    if registry:
        driver.push_built(connection, repository, tag, auth=auth, ctx=ctx)
    return outcome
