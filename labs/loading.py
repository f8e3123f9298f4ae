"""Loading a course from a folder of exercise files (course.yaml + one *.yaml per exercise).

Every file is parsed and validated before anything is written; the writes happen in one
transaction. So a broken file is refused with its name and line and the course stays as
it was. Loading the same folder again updates the course and its exercises in place
(matched by slug); exercises no longer in the folder are kept, since students may have
environments of them.
"""

import re
import secrets
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from clusters.models import Cluster
from panel.accounts.models import User

from .exercise_file import ExerciseFileError, ExerciseFileProblems, exercise_fields, load_yaml, parse_exercise
from .models import Course, Exercise

COURSE_FILE = "course.yaml"
COURSE_KEYS = {"title", "code", "description", "slug"}
CODE_RE = re.compile(r"^[A-Za-z0-9-]{4,32}$")


class CourseLoadError(ValueError):
    pass


def new_code():
    return secrets.token_hex(4).upper()


def parse_course_file(path):
    text = path.read_text(encoding="utf-8")
    data, loc = load_yaml(text, str(path))
    data = data or {}
    if not isinstance(data, dict):
        raise loc.error((), _("course.yaml is a mapping with title, code and description."))
    for key in data:
        if key not in COURSE_KEYS:
            raise loc.error((key,), _("unknown key %(key)r; course.yaml has %(known)s.") % {"key": key, "known": ", ".join(sorted(COURSE_KEYS))}, key=True)
    for key in COURSE_KEYS:
        if key in data and not isinstance(data[key], str):
            raise loc.error((key,), _("%(key)s must be text.") % {"key": key})
    if "code" in data and not CODE_RE.match(data["code"]):
        raise loc.error(("code",), _("code must be 4 to 32 letters, digits or dashes."))
    if "slug" in data and not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", data["slug"]):
        raise loc.error(("slug",), _("slug must be lowercase letters, digits and dashes."))
    return data


def read_folder(folder):
    """(course dict, [parsed exercise]) for a folder; ExerciseFileError / CourseLoadError when broken."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseLoadError(_("%(folder)s is not a folder.") % {"folder": folder})
    course_path = folder / COURSE_FILE
    # Every file is read and checked before any error is raised: the teacher sees every
    # problem of every file at once, not one per attempt.
    problems = []
    course = {}
    if course_path.exists():
        try:
            course = parse_course_file(course_path)
        except ExerciseFileError as exc:
            problems.append(exc)
    exercises, files_by_slug, paths = [], {}, []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        if path.name in (COURSE_FILE, "course.yml"):
            continue
        paths.append(path)
        try:
            parsed = parse_exercise(path.read_text(encoding="utf-8"), str(path))
        except ExerciseFileError as exc:
            problems.append(exc)
            continue
        except UnicodeDecodeError:
            problems.append(ExerciseFileError(str(path), 0, 0, _("not UTF-8 text.")))
            continue
        if parsed["slug"] in files_by_slug:
            problems.append(ExerciseFileError(str(path), 0, 0, _("slug %(slug)r is already used by %(other)s.") % {"slug": parsed["slug"], "other": files_by_slug[parsed["slug"]]}))
            continue
        files_by_slug[parsed["slug"]] = path
        exercises.append(parsed)
    if problems:
        raise problems[0] if len(problems) == 1 else ExerciseFileProblems(problems)
    if not paths:
        raise CourseLoadError(_("%(folder)s holds no exercise file (*.yaml).") % {"folder": folder})
    course.setdefault("slug", slugify(folder.resolve().name)[:63] or "course")
    course.setdefault("title", folder.resolve().name.replace("-", " ").replace("_", " ").capitalize())
    return course, exercises


def save_exercise(course, parsed, position=None):
    """Create or update one exercise of a course from a parsed file."""
    fields = exercise_fields(parsed)
    fields["updated_at"] = timezone.now()
    if position is not None:
        fields["position"] = position
    elif not course.exercises.filter(slug=parsed["slug"]).exists():
        fields["position"] = course.exercises.count()
    exercise, _created = Exercise.objects.update_or_create(course=course, slug=parsed["slug"], defaults=fields)
    return exercise


def setup_warnings(course):
    """What keeps exercises of this course from being launched, for its teachers (load_course,
    the course page, an exercise import): one sentence per exercise target with no cluster."""
    from .models import Target

    warnings = []
    for target, slugs in course.targets_without_cluster().items():
        needed = _("Kubernetes cluster") if target == Target.KUBERNETES else _("Docker host (a Docker cluster)")
        warnings.append(_("%(target)s exercises (%(slugs)s) cannot be launched: the course has no %(needed)s. Add one to the course "
                          "(Edit on the course page, or load_course --cluster NAME); until then students are told the exercise is not set up yet.")
                        % {"target": Target(target).label, "slugs": ", ".join(slugs), "needed": needed})
    return warnings


def load_course(folder, teacher=None, clusters=()):
    """Load or update the course in `folder`; return (course, created, exercises)."""
    course_data, exercises = read_folder(folder)
    teacher_user = None
    if teacher:
        teacher_user = User.objects.filter(username=teacher).first()
        if teacher_user is None:
            raise CourseLoadError(_("No user named %(name)r.") % {"name": teacher})
    cluster_objects = []
    for name in clusters:
        cluster = Cluster.objects.filter(name=name).first()
        if cluster is None:
            raise CourseLoadError(_("No cluster named %(name)r.") % {"name": name})
        cluster_objects.append(cluster)
    with transaction.atomic():
        course = Course.objects.select_for_update().filter(slug=course_data["slug"]).first()
        created = course is None
        if created:
            code = course_data.get("code") or new_code()
            course = Course(slug=course_data["slug"], code=code)
        if Course.objects.exclude(pk=course.pk).filter(code=course_data.get("code") or course.code).exists():
            raise CourseLoadError(_("Another course already uses the enrolment code %(code)s.") % {"code": course_data.get("code") or course.code})
        course.title = course_data["title"]
        if "description" in course_data:
            course.description = course_data["description"]
        if course_data.get("code"):
            course.code = course_data["code"]
        course.save()
        if teacher_user is not None:
            course.teachers.add(teacher_user)
        if cluster_objects:
            course.clusters.add(*cluster_objects)
        saved = [save_exercise(course, parsed, position=index) for index, parsed in enumerate(exercises)]
    return course, created, saved


__all__ = ["CourseLoadError", "ExerciseFileError", "load_course", "read_folder", "save_exercise", "setup_warnings"]
