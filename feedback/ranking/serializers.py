"""The ranking API's bodies. The request serializers validate what the views accept, so the OpenAPI schema
and the behaviour cannot differ; the response serializers document what the views send (built as dicts on
the hot path)."""

from __future__ import annotations

from rest_framework import serializers

from feedback.api.fields import NOT_BLANK, IdField, StrictCharField, StrictChoiceField
from feedback.models import Flag

from .limits import MAX_KEY_LENGTH, MAX_NOTE_LENGTH, MAX_RATIONALE_LENGTH, SCREEN_CHOICES


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
    pair = IdField()
    choice = StrictChoiceField(choices=SCREEN_CHOICES, help_text="As seen on screen.")
    idempotency_key = StrictCharField(
        max_length=MAX_KEY_LENGTH,
        schema_pattern=NOT_BLANK,
        help_text="Unique per vote: a retry with the same key is answered, not counted.",
    )
    rationale = StrictCharField(
        max_length=MAX_RATIONALE_LENGTH, required=False, allow_blank=True, trim_whitespace=False
    )


class VoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    rationale = serializers.CharField(allow_blank=True)
    time_taken_ms = serializers.IntegerField(
        allow_null=True, help_text="Measured by the server: from the pair's hand-out to this vote."
    )
    created_at = serializers.DateTimeField()
    next = PairSerializer(allow_null=True, help_text="Your next pair, or null when none is left for you.")


class SkipSerializer(serializers.Serializer):
    pair = serializers.IntegerField()
    next = PairSerializer(allow_null=True, help_text="Your next pair, or null when none is left for you.")


class ReportRequestSerializer(serializers.Serializer):
    pair = IdField()
    reason = StrictChoiceField(choices=Flag.Reason.values)
    note = StrictCharField(max_length=MAX_NOTE_LENGTH, required=False, allow_blank=True, trim_whitespace=False)


class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    reason = serializers.ChoiceField(choices=Flag.Reason.values)
    note = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
