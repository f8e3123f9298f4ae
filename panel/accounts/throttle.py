"""Failed-login throttling with django-axes, for the panel's login and the admin login.

Axes counts failures per account and per client address (AXES_LOCKOUT_PARAMETERS) and,
past AXES_FAILURE_LIMIT, refuses even the right password until the cool-off has passed.
Here: the page that says when to try again, and the audit entry of a lockout.
"""

from django.conf import settings
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from panel.audit.middleware import client_ip
from panel.audit.models import Action
from panel.audit.recorder import record


def lockout_response(request, original_response=None, credentials=None):
    cool_off = get_cool_off(request)
    until = timezone.localtime(timezone.now() + cool_off) if cool_off else None
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    return render(request, "accounts/locked_out.html", {
        "until": until, "minutes": minutes, "seconds": int(cool_off.total_seconds()) if cool_off else None,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }, status=settings.AXES_HTTP_RESPONSE_CODE)


def client_address(request):
    return client_ip(request)


@receiver(user_locked_out)
def _record_lockout(sender, request, username, ip_address, **kwargs):
    cool_off = get_cool_off(request)
    record(Action.LOGIN_FAILED, message=f"Login locked for {username!r} from {ip_address} after {settings.AXES_FAILURE_LIMIT} failures"
           + (f" for {int(cool_off.total_seconds())} s" if cool_off else ""))
