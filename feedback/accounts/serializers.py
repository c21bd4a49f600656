from __future__ import annotations

from rest_framework import serializers

from feedback.api.fields import StrictCharField

MAX_CREDENTIAL_LENGTH = 4096


class TokenRequestSerializer(serializers.Serializer):
    username = StrictCharField(min_length=1, max_length=MAX_CREDENTIAL_LENGTH, trim_whitespace=False)
    password = StrictCharField(
        min_length=1, max_length=MAX_CREDENTIAL_LENGTH, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(allow_null=True)
