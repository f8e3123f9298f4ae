from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from .panels import PANELS


@login_required
@require_GET
def index(request):
    panels = {name: {**func(request), "refresh": refresh, "rendered_at": timezone.now()} for name, (func, refresh) in PANELS.items()}
    return render(request, "dashboard/index.html", {"panels": panels})


@login_required
@require_GET
def panel(request, name):
    try:
        func, refresh = PANELS[name]
    except KeyError:
        raise Http404("No such panel") from None
    context = {**func(request), "refresh": refresh, "rendered_at": timezone.now()}
    return render(request, f"dashboard/partials/{name}.html", {"p": context})
