from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from .models import ApiToken, TokenScope, User


class MeSerializer(serializers.ModelSerializer):
    # A user may have no e-mail address: "" is not an `email`-format string, so it is plain text here.
    email = serializers.CharField(read_only=True, allow_blank=True)

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "role"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    display = serializers.CharField(source="__str__", read_only=True)
    expires_in_days = serializers.IntegerField(write_only=True, required=False, allow_null=True, min_value=1, max_value=3650, default=90)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "display", "scope", "created_at", "expires_at", "expires_in_days", "last_used_at", "revoked_at", "parent"]
        read_only_fields = ["id", "display", "created_at", "expires_at", "last_used_at", "revoked_at", "parent"]
        extra_kwargs = {"scope": {"default": TokenScope.READ}}

    def _creating_token(self):
        """The token this request is authenticated with, if any (None in the browser)."""
        request = self.context.get("request")
        auth = getattr(request, "auth", None)
        return auth if isinstance(auth, ApiToken) else None

    def validate(self, attrs):
        parent = self._creating_token()
        if parent is None:
            return attrs
        if parent.scope != TokenScope.WRITE and attrs.get("scope") == TokenScope.WRITE:
            raise serializers.ValidationError({"scope": [_("A read token can only create read tokens.")]})
        if parent.expires_at is not None:
            left = parent.expires_at - timezone.now()
            explicit = "expires_in_days" in self.initial_data
            days = attrs.get("expires_in_days")
            if days is None and explicit:
                raise serializers.ValidationError({"expires_in_days": [_(
                    "This token expires on %(date)s; the tokens it creates must expire too, at most %(days)s day(s) from now.") % {
                    "date": parent.expires_at.date().isoformat(), "days": max(left.days, 0)}]})
            if days is not None and timedelta(days=days) > left:
                if explicit:
                    raise serializers.ValidationError({"expires_in_days": [_(
                        "This token expires on %(date)s; a token it creates cannot outlive it (at most %(days)s day(s)).") % {
                        "date": parent.expires_at.date().isoformat(), "days": max(left.days, 0)}]})
                attrs["expires_at_cap"] = parent.expires_at  # the default (90 days) is shortened to the parent's expiry
        return attrs

    def create(self, validated_data):
        days = validated_data.pop("expires_in_days", None)
        cap = validated_data.pop("expires_at_cap", None)
        expires_at = timezone.now() + timedelta(days=days) if days else None
        if cap is not None:
            expires_at = cap
        token, plaintext = ApiToken.issue(self.context["request"].user, validated_data["name"], validated_data["scope"], expires_at,
                                          parent=self._creating_token())
        token.plaintext = plaintext
        return token

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if getattr(instance, "plaintext", None):
            data["token"] = instance.plaintext  # shown once, in the creation response only
        return data
