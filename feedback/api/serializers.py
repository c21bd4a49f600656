"""Shapes of the API's bodies, for the OpenAPI schema.

The ranking views check their few input fields by hand (see ``ranking.py``) to keep the vote path lean;
these serializers describe the same contract for drf-spectacular and are kept beside the views' tests.
"""

from __future__ import annotations

from rest_framework import serializers

from feedback.models import Flag
from feedback.services import MAX_KEY_LENGTH, MAX_RATIONALE_LENGTH, SCREEN_CHOICES


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What was wrong, for a person to read.")


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(allow_null=True)


class PromptSerializer(serializers.Serializer):
    text = serializers.CharField()
    language = serializers.CharField()


class SideSerializer(serializers.Serializer):
    text = serializers.CharField()


class PairSerializer(serializers.Serializer):
    pair = serializers.IntegerField(help_text="The pair's id: send it back with the vote.")
    prompt = PromptSerializer()
    left = SideSerializer()
    right = SideSerializer()


class VoteRequestSerializer(serializers.Serializer):
    pair = serializers.IntegerField(min_value=1)
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES, help_text="As seen on screen.")
    idempotency_key = serializers.CharField(
        max_length=MAX_KEY_LENGTH, help_text="Unique per vote: a retry with the same key is answered, not counted."
    )
    rationale = serializers.CharField(max_length=MAX_RATIONALE_LENGTH, required=False, allow_blank=True)
    time_taken_ms = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class VoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    rationale = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    next = PairSerializer(allow_null=True, help_text="Your next pair, or null when none is left for you.")


class SkipSerializer(serializers.Serializer):
    pair = serializers.IntegerField()
    next = PairSerializer(allow_null=True, help_text="Your next pair, or null when none is left for you.")


class ReportRequestSerializer(serializers.Serializer):
    pair = serializers.IntegerField(min_value=1)
    reason = serializers.ChoiceField(choices=Flag.Reason.values)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=Flag.Reason.values)
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
