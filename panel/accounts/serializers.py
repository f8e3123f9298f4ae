from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from .models import ApiToken, TokenScope, User


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "email", "role"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    display = serializers.CharField(source="__str__", read_only=True)
    expires_in_days = serializers.IntegerField(write_only=True, required=False, allow_null=True, min_value=1, max_value=3650, default=90)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "display", "scope", "created_at", "expires_at", "expires_in_days", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "display", "created_at", "expires_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"scope": {"default": TokenScope.READ}}

    def create(self, validated_data):
        days = validated_data.pop("expires_in_days", None)
        expires_at = timezone.now() + timedelta(days=days) if days else None
        token, plaintext = ApiToken.issue(self.context["request"].user, validated_data["name"], validated_data["scope"], expires_at)
        token.plaintext = plaintext
        return token

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if getattr(instance, "plaintext", None):
            data["token"] = instance.plaintext  # shown once, in the creation response only
        return data
