"""API token authentication (`Authorization: Bearer frg_…`) and scope enforcement."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import authentication, exceptions, permissions

from .models import ApiToken, token_digest


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower().decode() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed Authorization header: expected 'Bearer <token>'."))
        plaintext = header[1].decode(errors="replace")
        token = ApiToken.objects.select_related("user").filter(digest=token_digest(plaintext)).first()
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid API token."))
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(_("This API token was revoked."))
        if token.is_expired:
            raise exceptions.AuthenticationFailed(_("This API token has expired."))
        self._touch(token, request)
        return token.user, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    @staticmethod
    def _touch(token, request):
        # One write per token per minute at most: the hot path stays a single indexed read.
        now = timezone.now()
        resolution = timedelta(seconds=settings.API_TOKEN_LAST_USED_RESOLUTION)
        if token.last_used_at is None or now - token.last_used_at > resolution:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=request.META.get("REMOTE_ADDR"))


class TokenScopePermission(permissions.BasePermission):
    message = gettext_lazy("This API token has read scope; create a read-write token to change things.")

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and request.method not in permissions.SAFE_METHODS:
            return token.can_write
        return True
