"""Job kinds: a name, a queue, a timeout, a parameter serializer and `run(ctx, **params)`.

Apps declare kinds in their `jobs.py` with `@register`. The parameters are validated
by the kind's `Params` serializer before anything is queued, so a bad value is a field
error on the form or a 400 on the API, never a failed job.
"""

import json
from abc import ABC, abstractmethod

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .errors import UnknownJobKind

REGISTRY = {}


class NoParams(serializers.Serializer):
    pass


class JobKind(ABC):
    name = ""
    label = ""
    description = ""
    queue = "default"
    timeout = 600  # seconds
    Params = NoParams
    # The user attribute that allows starting this kind (see accounts.User).
    permission = "is_operator"
    target_model = None  # model class of the target, when the kind acts on one object

    def validate(self, params, context=None):
        """Return cleaned params or raise rest_framework.exceptions.ValidationError."""
        serializer = self.Params(data=params or {}, context=context or {})
        serializer.is_valid(raise_exception=True)
        # Stored in a JSONField and handed to run() as keyword arguments.
        return json.loads(json.dumps(serializer.validated_data, cls=DjangoJSONEncoder))

    def allowed(self, user, target=None):
        return bool(getattr(user, self.permission, False))

    @abstractmethod
    def run(self, ctx, **params):
        """Do the work, writing lines through ctx; return a JSON-able result or None."""

    def describe(self, params):
        return ""


def register(cls):
    instance = cls()
    if not instance.name:
        raise ValueError(f"{cls.__name__} has no name")
    REGISTRY[instance.name] = instance
    return cls


def get_kind(name):
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise UnknownJobKind(_("Unknown job kind %(name)r. Known kinds: %(known)s.") % {"name": name, "known": known}) from None


def kind_choices():
    return sorted((name, kind.label or name) for name, kind in REGISTRY.items())
