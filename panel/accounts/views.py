from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .access import get_visible_or_404
from .forms import ApiTokenForm
from .models import ApiToken


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Django's LoginView sets site_name to the request's host name (no sites framework):
        # the page is branded with the panel's own name instead.
        context["site_name"] = settings.SITE_NAME
        return context


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("dashboard:index")

    def form_valid(self, form):
        response = super().form_valid(form)
        user = form.user
        if user.must_change_password:
            user.must_change_password = False
            user.save(update_fields=["must_change_password"])
        messages.success(self.request, _("Your password was changed."))
        return response


@login_required
def tokens(request):
    """The user's own API tokens; a new token's value is shown once, right after creation."""
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token, new_token = ApiToken.issue(
            request.user, form.cleaned_data["name"], form.cleaned_data["scope"], form.expires_at()
        )
        form = ApiTokenForm()
    listed = ApiToken.objects.filter(user=request.user)
    response = render(request, "accounts/tokens.html", {"form": form, "tokens": listed, "new_token": new_token})
    response["Cache-Control"] = "no-store"  # the one-time token must not sit in a cache
    return response


@login_required
@require_POST
def token_revoke(request, pk):
    token = get_visible_or_404(ApiToken, request.user, pk=pk)
    token.revoke()
    messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
    return redirect("accounts:tokens")
