"""Records changes to `Audited` models made inside an actor context, and logins.

The "before" state is read from the database in pre_save, only when someone is acting,
so ordinary bookkeeping writes cost nothing extra.
"""

import datetime
import decimal
import uuid

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from .context import current_actor
from .models import Action, Audited, AuditEvent

SECRET_MARK = "(secret)"


def snapshot(instance):
    data = {}
    exclude = getattr(instance, "audit_exclude", set())
    for field in instance._meta.concrete_fields:
        if field.name in exclude:
            continue
        value = getattr(instance, field.attname)
        if field.name.endswith("_encrypted"):
            value = SECRET_MARK if value else ""
        data[field.name] = _jsonable(value)
    return data


def _jsonable(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):  # DurationField (an exercise's ttl)
        return value.total_seconds()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return SECRET_MARK
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


def record(action, obj=None, before=None, after=None, message="", actor=None, user=None):
    """Write one audit event. Explicit calls cover actions that are not plain saves."""
    actor = actor or current_actor()
    if user is None and actor is not None:
        user = actor.current_user
    return AuditEvent.objects.create(
        user=user if getattr(user, "pk", None) else None,
        username=getattr(user, "username", "") or "",
        action=action,
        object_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
        message=message,
        source=actor.source if actor else "",
        source_ip=actor.ip if actor else None,
        request_id=actor.request_id if actor else "",
    )


@receiver(pre_save)
def _remember_before(sender, instance, raw=False, **kwargs):
    if raw or not isinstance(instance, Audited) or current_actor() is None or instance.pk is None:
        return
    previous = sender._base_manager.filter(pk=instance.pk).first()
    instance._audit_before = snapshot(previous) if previous is not None else None


@receiver(post_save)
def _record_save(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if raw or not isinstance(instance, Audited) or current_actor() is None:
        return
    before = None if created else getattr(instance, "_audit_before", None)
    after = snapshot(instance)
    if not created and before == after:
        return
    record(Action.CREATE if created else Action.UPDATE, instance, before=before, after=after)
    instance._audit_before = after


@receiver(post_delete)
def _record_delete(sender, instance, **kwargs):
    if not isinstance(instance, Audited) or current_actor() is None:
        return
    record(Action.DELETE, instance, before=snapshot(instance))


@receiver(m2m_changed)
def _record_m2m(sender, instance, action, model, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear") or not isinstance(instance, Audited):
        return
    if current_actor() is None:
        return
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    names = sorted(str(item) for item in model._base_manager.filter(pk__in=pk_set or []))
    record(Action.UPDATE, instance, message=f"{model._meta.verbose_name_plural} {verb}: {', '.join(names)}")


@receiver(user_logged_in)
def _record_login(sender, request, user, **kwargs):
    record(Action.LOGIN, user=user, message="Logged in")


@receiver(user_logged_out)
def _record_logout(sender, request, user, **kwargs):
    if user is not None:
        record(Action.LOGOUT, user=user, message="Logged out")


@receiver(user_login_failed)
def _record_login_failed(sender, credentials, request=None, **kwargs):
    # The username tried is kept (it is not a secret); the password never is.
    record(Action.LOGIN_FAILED, message=f"Failed login for {credentials.get('username', '?')!r}")
