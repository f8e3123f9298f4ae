"""Who may do what: role checks and object lookups shared by pages and the API.

Object visibility lives on each model's QuerySet as `visible_to(user)`; views and API
handlers fetch through `get_visible_or_404` so another user's object is simply not
found (404), and role-restricted actions raise PermissionDenied (403).
"""

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission


def get_visible_or_404(queryset_or_model, user, **lookup):
    queryset = getattr(queryset_or_model, "objects", queryset_or_model)
    try:
        return queryset.visible_to(user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404("Not found") from None


def require(predicate, message):
    """Raise 403 unless predicate holds."""
    if not predicate:
        raise PermissionDenied(message)


def role_required(attribute, message="Your role does not allow this."):
    """View decorator: `@role_required("is_operator")`."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            require(getattr(request.user, attribute, False), message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class HasRole(BasePermission):
    """API permission: `HasRole.for_("is_operator")`, optionally only for writes."""

    attribute = "is_operator"
    writes_only = False

    @classmethod
    def for_(cls, attribute, writes_only=False):
        return type(f"HasRole_{attribute}", (cls,), {"attribute": attribute, "writes_only": writes_only})

    def has_permission(self, request, view):
        if self.writes_only and request.method in SAFE_METHODS:
            return True
        return bool(getattr(request.user, self.attribute, False))
