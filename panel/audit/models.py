from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _


class Audited:
    """Mixin for models whose changes are recorded. List secret or noisy fields in `audit_exclude`."""

    audit_exclude = set()


class Action(models.TextChoices):
    CREATE = "create", _("Create")
    UPDATE = "update", _("Update")
    DELETE = "delete", _("Delete")
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")
    RUN = "run", _("Run")
    CANCEL = "cancel", _("Cancel")
    RETRY = "retry", _("Retry")
    # Browser terminals (terminals/): each step of a session has its own type, so that the
    # audit log can be filtered on them.
    TERMINAL_OPEN = "terminal_open", _("Terminal opened")
    TERMINAL_FAILED = "terminal_failed", _("Terminal failed to open")
    TERMINAL_END = "terminal_end", _("Terminal ended")
    TERMINAL_STOP = "terminal_stop", _("Terminal ended by an administrator")
    TERMINAL_REFUSED = "terminal_refused", _("Terminal refused")
    OTHER = "other", _("Other")


class AuditEventQuerySet(models.QuerySet):
    def visible_to(self, user):
        return self if getattr(user, "is_admin", False) else self.none()


class AuditEvent(models.Model):
    """Who did what to which object, from where, when: one row per change (see NetBox's ObjectChange)."""

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    object_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    source = models.CharField(max_length=8, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id", "-time"])]

    def __str__(self):
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object_repr}"

    def changes(self):
        """[(field, before, after)] for the fields that differ."""
        before, after = self.before or {}, self.after or {}
        keys = sorted(set(before) | set(after))
        return [(key, before.get(key), after.get(key)) for key in keys if before.get(key) != after.get(key)]
