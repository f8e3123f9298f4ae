"""Lab pages for students (my courses, exercises, my environment) and teachers (the live grid,
class start, enrolment, grades, exercise files).

Every object is fetched through `visible_to` (another student's environment is a 404) and
every teacher action checks `course.is_taught_by` (403). Views read the database and start
jobs (labs/environments.py); the live parts are htmx partials that poll and stop polling
themselves when nothing is moving.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404, require
from panel.jobs.forms import carry_errors
from panel.jobs.models import Job, JobEvent
from panel.jobs.services import start_job

from . import environments as actions
from .enrolment import EnrolmentError, enrol_by_code, enrol_csv, enrol_person
from .exercise_file import ExerciseFileError, exercise_to_yaml, parse_exercise, render_instructions
from .course_forms import CourseForm
from .forms import EnrolCodeForm, EnrolCsvForm, EnrolPersonForm, ExerciseImportForm, ExtendForm, LoadTestForm
from .grid import build_grid, grades_csv
from .jobs import LAB_KINDS, active_lab_job, is_secret_key
from .loading import save_exercise, setup_warnings
from .models import Attempt, Course, Environment, EnvironmentState, Exercise

# Keys of the access dict that the page lays out itself (labs/partials/access.html).
SHOWN_APART = {"kubeconfig", "namespace", "ssh", "ports", "docker", "host"}
STUDENT_ACTIONS = {"check": actions.check, "reset": actions.reset, "destroy": actions.destroy}
TEACHER_ACTIONS = {"extend", "expire"}


def lab_role_required(view):
    """Labs are for teachers, students and admins; anyone else gets a 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        require(user.is_teacher or user.is_student, _("The teaching lab is for teachers and students."))
        return view(request, *args, **kwargs)

    return wrapper


def _require_teacher(course, user):
    require(course.is_taught_by(user), _("Only a teacher of this course can do this."))


def _warn_about_setup(request, course):
    """Tell the teacher, right after a change, which exercises students cannot launch yet."""
    for warning in setup_warnings(course):
        messages.warning(request, warning)


@login_required
@lab_role_required
@require_GET
def course_list(request):
    """My courses: the ones I teach and the ones I am enrolled in, and enrolment by code."""
    courses = Course.objects.visible_to(request.user).prefetch_related("teachers")
    taught = set(Course.objects.taught_by(request.user).values_list("pk", flat=True))
    return render(request, "labs/course_list.html", {"courses": courses, "taught": taught, "code_form": EnrolCodeForm()})


@login_required
@lab_role_required
def course_create(request):
    """A teacher opens a course; they teach it (with whoever else they tick)."""
    require(request.user.is_teacher, _("Only teachers can create courses."))
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        course = form.save()
        course.teachers.add(request.user)
        messages.success(request, _("Course %(course)s created; its enrolment code is %(code)s.") % {"course": course, "code": course.code})
        _warn_about_setup(request, course)
        return redirect("labs:course_detail", course.pk)
    return render(request, "labs/course_form.html", {"form": form, "title": _("New course")})


@login_required
@lab_role_required
def course_edit(request, pk):
    course = get_visible_or_404(Course, request.user, pk=pk)
    _require_teacher(course, request.user)
    form = CourseForm(request.POST or None, instance=course)
    if request.method == "POST" and form.is_valid():
        course = form.save()
        if not course.teachers.exists():  # a course always keeps someone who can run it
            course.teachers.add(request.user)
        messages.success(request, _("Course %(course)s saved.") % {"course": course})
        _warn_about_setup(request, course)
        return redirect("labs:course_detail", course.pk)
    return render(request, "labs/course_form.html", {"form": form, "title": _("Edit course"), "course": course})


@login_required
@lab_role_required
@require_POST
def enrol(request):
    form = EnrolCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Type the course's enrolment code."))
        return redirect("labs:course_list")
    try:
        course, created = enrol_by_code(request.user, form.cleaned_data["code"])
    except EnrolmentError as exc:
        messages.error(request, str(exc))
        return redirect("labs:course_list")
    messages.success(request, _("You are enrolled in %(course)s.") % {"course": course} if created else _("You were already enrolled in %(course)s.") % {"course": course})
    return redirect("labs:course_detail", course.pk)


@login_required
@lab_role_required
@require_GET
def course_detail(request, pk):
    """A student sees the exercises and their environments; a teacher also sees the live grid.

    For htmx polls, only the grid (teachers) is rendered.
    """
    course = get_visible_or_404(Course, request.user, pk=pk)
    teacher = course.is_taught_by(request.user)
    if request.htmx:
        require(teacher, _("Only a teacher of this course can see its grid."))
        return render(request, "labs/partials/grid.html", _grid_context(course))
    exercises = course.exercises.order_by("position", "slug")
    mine = {env.exercise_id: env for env in Environment.objects.filter(exercise__course=course, owner=request.user).exclude(state=EnvironmentState.DESTROYED)}
    context = {"course": course, "teacher": teacher, "exercises": [(exercise, mine.get(exercise.pk)) for exercise in exercises]}
    if teacher:
        context["setup_warnings"] = setup_warnings(course)
        context.update(_grid_context(course))
        context.update(person_form=EnrolPersonForm(), csv_form=EnrolCsvForm(), import_form=ExerciseImportForm(), extend_form=ExtendForm())
    return render(request, "labs/course_detail.html", context)


def _grid_context(course):
    grid = build_grid(course)
    moving = any(
        cell["environment"] is not None and cell["environment"].state in (EnvironmentState.PENDING, EnvironmentState.LAUNCHING, EnvironmentState.DESTROYING)
        for row in grid["rows"] for cell in row["cells"]
    )
    return {"course": course, "grid": grid, "poll_interval": 2 if moving else 5}


@login_required
@lab_role_required
@require_GET
def exercise_detail(request, pk):
    exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
    environment = actions.current_environment(exercise, request.user)
    teacher = exercise.course.is_taught_by(request.user)
    return render(request, "labs/exercise_detail.html", {
        "exercise": exercise,
        "course": exercise.course,
        "teacher": teacher,
        "instructions": render_instructions(exercise.instructions),
        "environment": environment,
        "not_set_up": exercise.course.cluster_for(exercise.target) is None,
        "setup_warnings": setup_warnings(exercise.course) if teacher else [],
    })


@login_required
@lab_role_required
@require_POST
def exercise_launch(request, pk):
    exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
    try:
        environment, job = actions.launch(exercise, request.user, request.user)
    except actions.EnvironmentBusy as exc:
        messages.warning(request, str(exc))
        environment = actions.current_environment(exercise, request.user)
        if environment is None:
            return redirect("labs:exercise_detail", exercise.pk)
        return redirect("labs:environment_detail", environment.pk)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("labs:exercise_detail", exercise.pk)
    messages.info(request, _("Launching your environment (job #%(job)s).") % {"job": job.pk})
    return redirect("labs:environment_detail", environment.pk)


@login_required
@lab_role_required
@require_POST
def class_start(request, pk):
    exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
    _require_teacher(exercise.course, request.user)
    jobs, skipped = actions.class_start(exercise, request.user)
    messages.info(request, _("Class start: %(n)s environment(s) launching, %(skipped)s already up or busy.") % {"n": len(jobs), "skipped": skipped})
    return redirect("labs:course_detail", exercise.course_id)


@login_required
@lab_role_required
@require_GET
def exercise_export(request, pk):
    exercise = get_visible_or_404(Exercise.objects.select_related("course"), request.user, pk=pk)
    _require_teacher(exercise.course, request.user)
    response = HttpResponse(exercise_to_yaml(exercise), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{exercise.slug}.yaml"'
    return response


@login_required
@lab_role_required
@require_POST
def exercise_import(request, pk):
    course = get_visible_or_404(Course, request.user, pk=pk)
    _require_teacher(course, request.user)
    form = ExerciseImportForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose an exercise file (.yaml)."))
        return redirect("labs:course_detail", course.pk)
    upload = form.cleaned_data["file"]
    try:
        text = upload.read().decode("utf-8")
        parsed = parse_exercise(text, upload.name)
    except UnicodeDecodeError:
        messages.error(request, _("%(file)s is not UTF-8 text.") % {"file": upload.name})
        return redirect("labs:course_detail", course.pk)
    except ExerciseFileError as exc:
        messages.error(request, str(exc))
        return redirect("labs:course_detail", course.pk)
    exercise = save_exercise(course, parsed)
    messages.success(request, _("Exercise %(slug)s saved.") % {"slug": exercise.slug})
    _warn_about_setup(request, course)
    return redirect("labs:course_detail", course.pk)


def shown_access(environment):
    """The access dict without what must never be on a page (the kubeconfig is a separate download)."""
    shown = {}
    for key, value in environment.access.items():
        if key == "kubeconfig":
            shown[key] = True
        elif not is_secret_key(key):
            shown[key] = value
    return shown


def _environment_context(environment, user):
    job = active_lab_job(environment)
    last_job = job or Job.objects.for_target(environment).filter(kind__in=LAB_KINDS).first()
    lines = []
    if last_job is not None:
        lines = list(JobEvent.objects.filter(job=last_job).order_by("-seq")[:12])[::-1]
    attempts = list(environment.attempts.select_related("requested_by")[:20])
    access = shown_access(environment) if environment.state == EnvironmentState.READY else {}
    owner = environment.owner_id == user.pk
    return {
        "environment": environment,
        "exercise": environment.exercise,
        "course": environment.exercise.course,
        "owner": owner,
        "teacher": environment.exercise.course.is_taught_by(user),
        "access": access,
        "other_access": [(key, value) for key, value in access.items() if key not in SHOWN_APART],
        "active_job": job,
        "last_job": last_job,
        "job_lines": lines,
        "latest_attempt": attempts[0] if attempts else None,
        "attempts": attempts,
        "polling": job is not None or environment.state in (EnvironmentState.PENDING, EnvironmentState.LAUNCHING, EnvironmentState.DESTROYING),
    }


@login_required
@lab_role_required
@require_GET
@never_cache
def environment_detail(request, pk):
    """The environment page, or for htmx polls its live part (state, job progress, check results)."""
    environment = get_visible_or_404(Environment.objects.select_related("exercise__course", "owner", "cluster"), request.user, pk=pk)
    context = _environment_context(environment, request.user)
    if request.htmx:
        return render(request, "labs/partials/environment_live.html", context)
    return _environment_page(request, environment, context)


def _environment_page(request, environment, context=None, load_form=None, status=200):
    context = context or _environment_context(environment, request.user)
    context["instructions"] = render_instructions(environment.exercise.instructions)
    context["extend_form"] = ExtendForm()
    context.update(_terminal_context(environment, request.user, request.GET.get("member", "")))
    context.update(_load_test_context(environment, request.user, load_form))
    return render(request, "labs/environment_detail.html", context, status=status)


def _load_test_context(environment, user, form=None):
    """The teacher's load-test card: its form (or why there is none), the environment's last load tests."""
    if not environment.course.is_taught_by(user):
        return {"load_test": None}
    from .loadtest import KIND, describe_load_test, summarize_load_test

    jobs = [{"job": job, "target": describe_load_test(job), "summary": summarize_load_test(job)}
            for job in Job.objects.visible_to(user).filter(kind=KIND, params__environment=environment.pk).order_by("-pk")[:5]]
    unavailable = ""
    if environment.state != EnvironmentState.READY:
        unavailable = _("A load test needs the environment ready.")
    if form is None and not unavailable:
        form = LoadTestForm(environment)
    return {"load_test": {"form": None if unavailable else form, "unavailable": unavailable, "jobs": jobs}}


@login_required
@lab_role_required
@require_POST
def environment_load_test(request, pk):
    """A teacher starts a load test on one of their students' environments (labs/loadtest.py)."""
    environment = get_visible_or_404(Environment.objects.select_related("exercise__course", "owner", "cluster"), request.user, pk=pk)
    _require_teacher(environment.exercise.course, request.user)
    form = LoadTestForm(environment, request.POST)
    if form.is_valid():
        try:
            job = start_job("lab-load-test", form.params(), request.user, target=environment)
        except ValidationError as exc:
            carry_errors(form, exc.detail)
        else:
            messages.info(request, _("Load test started (job #%(job)s).") % {"job": job.pk})
            return redirect(f"{reverse('labs:environment_detail', args=[environment.pk])}#load-test")
    return _environment_page(request, environment, load_form=form, status=400)


def _terminal_context(environment, user, member=""):
    """The terminal beside the instructions (owner and teachers, ready environments), and for
    teachers the environment's terminal sessions (watch live, replay)."""
    from terminals.models import TerminalSession
    from terminals.views import terminal_context

    context = {"terminal": None, "terminal_sessions": []}
    if environment.state == EnvironmentState.READY and environment.exercise.target in ("ssh", "docker", "kubernetes"):
        params = {"environment": environment.pk, "member": member[:128]}
        try:
            context["terminal"] = terminal_context(user, "lab", params, title=environment.exercise.title)
        except (PermissionDenied, Http404):
            pass
    if context["terminal"] is not None and environment.owner_id != user.pk:
        # A teacher (or admin) on a student's page: no shell opens by itself (each would be a
        # live, recorded session as the teacher); the student's live terminals are shown
        # read-only, and "Open a shell in this environment" opens one on request.
        context["terminal"]["manual"] = True
        context["watch_terminals"] = _watch_terminals(environment)
        # A shell the student opens later appears without a reload (environment_watch_terminals).
        context["watch_polling"] = environment.course.is_taught_by(user)
    if environment.course.is_taught_by(user):
        context["terminal_sessions"] = list(TerminalSession.objects.filter(kind="lab", object_id=str(environment.pk))[:20])
    return context


def _watch_terminals(environment):
    """The environment owner's live terminals, as read-only watch boxes (at most 4)."""
    from terminals.models import TerminalSession

    return [
        {"session": str(session.pk), "ws_path": f"/ws/terminals/lab/?watch={session.pk}", "label": session.target_label,
         "title": session.target_label, "storage_key": "", "readonly": True}
        for session in TerminalSession.objects.live().filter(kind="lab", object_id=str(environment.pk), user_id=environment.owner_id)[:4]]


@login_required
@lab_role_required
@require_GET
@never_cache
def environment_watch_terminals(request, pk):
    """The student's live terminals as watch boxes, polled by the teacher's view of their lab
    page (static/js/terminal.js attaches the new ones). Teachers of the course and admins only;
    answers 286 (htmx: stop polling) once the environment has no terminal any more."""
    environment = get_visible_or_404(Environment.objects.select_related("exercise__course", "owner"), request.user, pk=pk)
    _require_teacher(environment.exercise.course, request.user)
    if environment.state != EnvironmentState.READY or environment.exercise.target not in ("ssh", "docker", "kubernetes"):
        return HttpResponse(status=286)
    return render(request, "labs/partials/watch_terminals.html", {"watch_terminals": _watch_terminals(environment)})


@login_required
@lab_role_required
@require_GET
@never_cache
def environment_kubeconfig(request, pk):
    """The student's own kubeconfig, as a file. Only its owner downloads it."""
    environment = get_visible_or_404(Environment, request.user, pk=pk)
    if environment.owner_id != request.user.pk:
        raise Http404(_("Only the environment's owner downloads its kubeconfig."))
    kubeconfig = environment.access.get("kubeconfig") if environment.state == EnvironmentState.READY else None
    if not kubeconfig:
        raise Http404(_("This environment has no kubeconfig."))
    response = HttpResponse(kubeconfig, content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{environment.name}.kubeconfig"'
    return response


@login_required
@lab_role_required
@require_POST
def environment_action(request, pk, action):
    environment = get_visible_or_404(Environment.objects.select_related("exercise__course", "owner"), request.user, pk=pk)
    if action not in STUDENT_ACTIONS and action not in TEACHER_ACTIONS:
        raise Http404(_("No such action."))
    if action in TEACHER_ACTIONS:
        _require_teacher(environment.exercise.course, request.user)
    try:
        if action == "extend":
            form = ExtendForm(request.POST)
            minutes = form.cleaned_data["minutes"] if form.is_valid() else 60
            job = actions.extend(environment, request.user, minutes)
        elif action == "expire":
            job = actions.act(environment, "lab-destroy", request.user, {"reason": "expired"})
        else:
            job = STUDENT_ACTIONS[action](environment, request.user)
    except actions.EnvironmentBusy as exc:
        messages.warning(request, str(exc))
    else:
        messages.info(request, _("%(kind)s started (job #%(job)s).") % {"kind": job.kind, "job": job.pk})
    if request.POST.get("next") == "grid":
        return redirect("labs:course_detail", environment.exercise.course_id)
    return redirect("labs:environment_detail", environment.pk)


@login_required
@lab_role_required
@require_POST
def course_bulk_action(request, pk, action):
    """Extend or expire every live environment of the course (or of one exercise)."""
    course = get_visible_or_404(Course, request.user, pk=pk)
    _require_teacher(course, request.user)
    if action not in TEACHER_ACTIONS:
        raise Http404(_("No such action."))
    exercise = None
    if request.POST.get("exercise"):
        exercise = course.exercises.filter(pk=request.POST["exercise"]).first()
        if exercise is None:
            raise Http404(_("No such exercise in this course."))
    environments = list(actions.live_environments(course, exercise))
    if action == "extend":
        form = ExtendForm(request.POST)
        minutes = form.cleaned_data["minutes"] if form.is_valid() else 60
        jobs, skipped = actions.for_all(environments, actions.extend, request.user, minutes=minutes)
    else:
        jobs, skipped = actions.for_all(environments, lambda env, user: actions.act(env, "lab-destroy", user, {"reason": "expired"}), request.user)
    messages.info(request, _("%(n)s environment(s): job started; %(skipped)s busy, skipped.") % {"n": len(jobs), "skipped": skipped})
    return redirect("labs:course_detail", course.pk)


@login_required
@lab_role_required
@require_POST
@never_cache
def course_enrol(request, pk):
    """Enrol one person (existing username or name + email) or a CSV; new passwords are shown once."""
    course = get_visible_or_404(Course, request.user, pk=pk)
    _require_teacher(course, request.user)
    results = []
    try:
        if "csv" in request.FILES or request.POST.get("csv_text"):
            form = EnrolCsvForm(request.POST, request.FILES)
            if not form.is_valid():
                raise EnrolmentError(_("Choose a CSV file."))
            results = enrol_csv(course, form.text())
        else:
            form = EnrolPersonForm(request.POST)
            if not form.is_valid():
                raise EnrolmentError(_("Give a username, or a name and an email."))
            data = form.cleaned_data
            outcome = enrol_person(course, name=data["name"], email=data["email"], ssh_public_key=data["ssh_public_key"], username=data["username"])
            results = [{"line": 1, "name": data["name"], "email": data["email"], **outcome}]
    except EnrolmentError as exc:
        messages.error(request, str(exc))
        return redirect("labs:course_detail", course.pk)
    return render(request, "labs/enrol_result.html", {"course": course, "results": results})


@login_required
@lab_role_required
@require_GET
def course_grades(request, pk):
    course = get_visible_or_404(Course, request.user, pk=pk)
    _require_teacher(course, request.user)
    response = HttpResponse(grades_csv(course), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{course.slug}-grades.csv"'
    return response


@login_required
@lab_role_required
@require_GET
def attempt_detail(request, pk):
    attempt = get_visible_or_404(Attempt.objects.select_related("environment__exercise__course", "requested_by"), request.user, pk=pk)
    return render(request, "labs/attempt_detail.html", {"attempt": attempt, "environment": attempt.environment})

