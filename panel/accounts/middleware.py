from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

ALLOWED_PREFIXES = ("/static/", "/healthz", "/metrics", "/i18n/")


class ForcePasswordChangeMiddleware:
    """A user with a one-time password goes to the password page before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(ALLOWED_PREFIXES):
            # Checked first: /healthz/live and static files must not load the session or
            # the user (the database may be the thing that is down).
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.must_change_password:
            allowed = (reverse("accounts:password_change"), reverse("accounts:logout"))
            if request.path not in allowed:
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": "Change your one-time password in the browser first."}, status=403)
                return redirect("accounts:password_change")
        return self.get_response(request)
