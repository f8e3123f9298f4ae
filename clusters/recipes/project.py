"""Project folders: a playbook with its roles/, group_vars/, host_vars/, files/ and templates/.

From the command line a project is a folder on the panel's machine; from the pages and
the API it is an upload (a .zip or .tar.gz of that folder), kept in the job's parameters
(base64, size-limited) and unpacked into a private temporary folder where it is read and
run. Unpacking refuses absolute paths, `..`, links and devices, and archives that would
grow past the configured size (an archive bomb).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from clusters import conf
from panel.lib import safe_yaml

from .loader import RecipeError, parse_recipe

PLAYBOOK_NAMES = ("site.yml", "site.yaml", "playbook.yml", "playbook.yaml", "main.yml", "main.yaml")


def _safe_name(name):
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise RecipeError(f"the archive holds {name!r}, a path outside its folder; it was refused.")
    return path


def unpack(data, destination, source="project"):
    """Unpack a zip or tar(.gz) archive's regular files and folders into destination."""
    if len(data) > conf.PROJECT_ARCHIVE_MAX_BYTES:
        raise RecipeError(f"{source}: the archive is {len(data) // 1024} KiB; the limit is {conf.PROJECT_ARCHIVE_MAX_BYTES // 1024} KiB.")
    total = 0
    destination = Path(destination)

    def write(name, reader, size):
        nonlocal total
        total += size
        if total > conf.PROJECT_EXTRACTED_MAX_BYTES:
            raise RecipeError(f"{source}: the archive unpacks to more than {conf.PROJECT_EXTRACTED_MAX_BYTES // 1048576} MiB; refused.")
        target = destination / _safe_name(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            shutil.copyfileobj(reader, out)

    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    (destination / _safe_name(info.filename)).mkdir(parents=True, exist_ok=True)
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise RecipeError(f"{source}: the archive holds a link ({info.filename}); links are refused.")
                with archive.open(info) as reader:
                    write(info.filename, reader, info.file_size)
        return
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except tarfile.TarError:
        raise RecipeError(f"{source}: not a .zip or .tar.gz archive.") from None
    with archive:
        for member in archive.getmembers():
            if member.isdir():
                (destination / _safe_name(member.name)).mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                write(member.name, archive.extractfile(member), member.size)
            else:
                raise RecipeError(f"{source}: the archive holds {member.name!r}, which is not a plain file or folder; refused.")


def project_root(folder):
    """The folder holding the playbook: the archive's single top-level folder, if it has only one."""
    folder = Path(folder)
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def find_playbook(folder, name=""):
    """The playbook of a project folder: the one named, else site.yml / playbook.yml / main.yml, else the only playbook."""
    folder = Path(folder)
    if name:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()):
            raise RecipeError(f"playbook {name!r} is outside the project folder.")
        if not path.is_file():
            raise RecipeError(f"the project has no playbook {name!r}.")
        return path
    for candidate in PLAYBOOK_NAMES:
        if (folder / candidate).is_file():
            return folder / candidate
    playbooks = []
    for path in sorted(folder.glob("*.y*ml")):
        try:
            data = safe_yaml.safe_load(path.read_text(errors="replace"))
        except yaml.YAMLError:
            continue
        if isinstance(data, list) and any(isinstance(item, dict) and ("hosts" in item or "import_playbook" in item) for item in data):
            playbooks.append(path)
    if len(playbooks) == 1:
        return playbooks[0]
    if not playbooks:
        raise RecipeError(f"no playbook found at the top of the project (looked for {', '.join(PLAYBOOK_NAMES)} and any file with plays).")
    raise RecipeError(f"the project has several playbooks ({', '.join(path.name for path in playbooks)}); name the one to run.")


def load_folder(folder, playbook="", trusted=True, source=None):
    """A recipe from a project folder (or a playbook file inside one)."""
    folder = Path(folder).expanduser().resolve()
    path = find_playbook(folder, playbook)
    text = path.read_text(encoding="utf-8-sig")
    return parse_recipe(text, source=source or path.name, base_dir=path.parent, trusted_paths=trusted, playbook_path=path)


def encode_archive(data):
    return base64.b64encode(data).decode()


def decode_archive(text):
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RecipeError("the project archive is not valid base64.") from None


@contextlib.contextmanager
def opened_project(archive_b64, playbook="", source="project"):
    """Unpack an uploaded project into a private temp folder; yield the recipe read from it; remove the folder."""
    folder = Path(tempfile.mkdtemp(prefix="filrouge-project-"))
    folder.chmod(0o700)
    try:
        unpack(decode_archive(archive_b64), folder, source=source)
        root = project_root(folder)
        path = find_playbook(root, playbook)
        label = f"{source}:{path.relative_to(root)}"
        yield parse_recipe(path.read_text(encoding="utf-8-sig", errors="replace"), source=label, base_dir=path.parent,
                           trusted_paths=False, playbook_path=path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
