from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from rest_framework.exceptions import ValidationError

from panel.accounts.access import get_visible_or_404

from .errors import UnknownJobKind
from .filters import JobFilter
from .forms import carry_errors, params_form_class
from .kinds import REGISTRY, get_kind
from .models import Job, JobEvent
from .services import JobStateError, cancel_job, retry_job, start_job

TAIL_LINES = 200
POLL_BATCH = 1000


@login_required
@require_GET
def job_list(request):
    jobs = Job.objects.visible_to(request.user).select_related("user")
    job_filter = JobFilter(request.GET, queryset=jobs)
    page = Paginator(job_filter.qs, 50).get_page(request.GET.get("page"))
    startable = [kind for kind in REGISTRY.values() if kind.allowed(request.user) and kind.target_model is None]
    context = {"filter": job_filter, "page": page, "startable": startable, "any_active": any(not j.is_finished for j in page)}
    template = "jobs/partials/job_table.html" if request.htmx and request.htmx.target == "job-table" else "jobs/list.html"
    return render(request, template, context)


@login_required
def job_start(request, kind_name):
    try:
        kind = get_kind(kind_name)
    except UnknownJobKind:
        raise Http404(_("Unknown job kind.")) from None
    if not kind.allowed(request.user):
        raise PermissionDenied(_("Your role does not allow starting this job."))
    form_class = params_form_class(kind)
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = start_job(kind.name, form.cleaned_data, request.user)
        except ValidationError as exc:
            carry_errors(form, exc.detail)
        else:
            warn_if_not_enqueued(request, job)
            return redirect("jobs:detail", job.pk)
    return render(request, "jobs/start.html", {"kind": kind, "form": form}, status=400 if form.errors else 200)


def warn_if_not_enqueued(request, job):
    """The job was accepted but the queue (Redis) did not answer: say when it will start."""
    if not getattr(job, "enqueued", True):
        messages.warning(request, _("The job queue is unreachable right now. The job is saved and will start by itself when the queue answers again."))


@login_required
@require_GET
def job_detail(request, pk):
    job = get_visible_or_404(Job, request.user, pk=pk)
    # A seq range, not ORDER BY ... DESC LIMIT: an index range scan whatever the table's statistics say.
    events = list(JobEvent.objects.filter(job_id=job.pk, seq__gt=max(0, job.line_count - TAIL_LINES)).order_by("seq"))
    last_seq = events[-1].seq if events else 0
    hidden = max(0, (events[0].seq - 1) if events else 0)
    context = {"job": job, "events": events, "last_seq": last_seq, "hidden_lines": hidden, "polling": not _log_complete(job, events)}
    return render(request, "jobs/detail.html", context)


@login_required
@require_GET
def job_log(request, pk):
    """htmx poll: lines after `after`, the header, and the next poller (none once the end marker is sent)."""
    job = get_visible_or_404(Job, request.user, pk=pk)
    try:
        after = max(0, int(request.GET.get("after", 0)))
    except ValueError:
        after = 0
    events = list(JobEvent.objects.filter(job_id=job.pk, seq__gt=after).order_by("seq")[:POLL_BATCH])
    last_seq = events[-1].seq if events else after
    context = {"job": job, "events": events, "last_seq": last_seq, "polling": not _log_complete(job, events)}
    return render(request, "jobs/partials/log_poll.html", context)


def _log_complete(job, events):
    return job.is_finished and (not events or events[-1].is_end or job.line_count <= events[-1].seq)


@login_required
@require_GET
def job_log_text(request, pk):
    job = get_visible_or_404(Job, request.user, pk=pk)

    def lines():
        for event in job.events.order_by("seq").iterator(chunk_size=2000):
            prefix = " ".join(part for part in (event.time.strftime("%H:%M:%S"), event.host and f"[{event.host}]", event.task and f"{event.task}:", event.outcome and event.outcome.upper()) if part)
            yield f"{prefix} {event.text}\n"

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.log"'
    return response


@login_required
@require_POST
def job_cancel(request, pk):
    job = get_visible_or_404(Job, request.user, pk=pk)
    _require_can_act(request.user, job)
    try:
        cancel_job(job, request.user)
        messages.info(request, _("Cancel requested."))
    except JobStateError as exc:
        messages.warning(request, str(exc))
    return redirect("jobs:detail", job.pk)


@login_required
@require_POST
def job_retry(request, pk):
    job = get_visible_or_404(Job, request.user, pk=pk)
    _require_can_act(request.user, job)
    try:
        new_job = retry_job(job, request.user)
    except (JobStateError, ValidationError, UnknownJobKind) as exc:
        messages.error(request, str(getattr(exc, "detail", exc)))
        return redirect("jobs:detail", job.pk)
    warn_if_not_enqueued(request, new_job)
    return redirect("jobs:detail", new_job.pk)


def _require_can_act(user, job):
    """Cancel and retry: the job's owner, or an operator."""
    if not (user.is_operator or job.user_id == user.pk):
        raise PermissionDenied(_("Only the job's owner or an operator can do this."))
