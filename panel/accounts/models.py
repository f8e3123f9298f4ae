import hashlib
import secrets
import string

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from panel.audit.models import Audited


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    OPERATOR = "operator", _("Operator")
    TEACHER = "teacher", _("Teacher")
    STUDENT = "student", _("Student")
    NONE = "", _("No role")


class User(Audited, AbstractUser):
    """A person using the panel. The role decides what they may do; objects decide what they see."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, blank=True, default=Role.NONE)
    must_change_password = models.BooleanField(
        _("must change password"), default=False, help_text=_("Set for one-time passwords.")
    )

    audit_exclude = {"password", "last_login"}

    def save(self, *args, **kwargs):
        # `createsuperuser` gives no role: a superuser is an admin.
        if self._state.adding and self.is_superuser and not self.role:
            self.role = Role.ADMIN
        # The role is the source of truth; Django admin access follows it.
        self.is_staff = self.is_superuser = self.role == Role.ADMIN
        super().save(*args, **kwargs)

    @property
    def is_admin(self):
        return self.is_active and self.role == Role.ADMIN

    @property
    def is_operator(self):
        """Admins and operators run jobs against the inventory."""
        return self.is_active and self.role in (Role.ADMIN, Role.OPERATOR)

    @property
    def is_teacher(self):
        return self.is_active and self.role in (Role.ADMIN, Role.TEACHER)

    @property
    def is_student(self):
        return self.is_active and self.role == Role.STUDENT


TOKEN_PREFIX = "frg"
_ALPHABET = string.ascii_letters + string.digits


def _random(length):
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def token_digest(plaintext: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe (same reasoning as GitHub's tokens).
    return hashlib.sha256(plaintext.encode()).hexdigest()


class TokenScope(models.TextChoices):
    READ = "read", _("Read")
    WRITE = "write", _("Read and write")


class ApiTokenQuerySet(models.QuerySet):
    def visible_to(self, user):
        """A token is its owner's business only (admins revoke others' through Django admin)."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        return self.filter(user=user)

    def usable(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class ApiToken(Audited, models.Model):
    """A named API token. Only its SHA-256 digest is stored; the token is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=8, db_index=True, help_text=_("Shown to tell tokens apart."))
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(_("scope"), max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The token that created this one through the API (None: created in the browser or by an
    # admin). A child is never wider than its parent, and revoking the parent revokes it.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children", editable=False)

    objects = ApiTokenQuerySet.as_manager()
    audit_exclude = {"digest", "last_used_at", "last_used_ip"}

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({TOKEN_PREFIX}_{self.prefix}_…)"

    @classmethod
    def issue(cls, user, name, scope=TokenScope.READ, expires_at=None, parent=None):
        """Create a token and return (token, plaintext); the plaintext is never stored."""
        prefix = _random(8)
        plaintext = f"{TOKEN_PREFIX}_{prefix}_{_random(43)}"
        token = cls.objects.create(
            user=user, name=name, prefix=prefix, digest=token_digest(plaintext), scope=scope, expires_at=expires_at, parent=parent
        )
        return token, plaintext

    @property
    def is_expired(self):
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self):
        return self.revoked_at is None and not self.is_expired

    @property
    def can_write(self):
        return self.scope == TokenScope.WRITE

    def revoke(self):
        """Revoke this token and every token created with it (children, their children...)."""
        now = timezone.now()
        pending, seen = [self], set()
        while pending:
            token = pending.pop()
            if token.pk in seen:
                continue
            seen.add(token.pk)
            if token.revoked_at is None:
                token.revoked_at = now
                token.save(update_fields=["revoked_at"])
            pending.extend(ApiToken.objects.filter(parent=token).exclude(pk__in=seen))
