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
    suffix = serializers.CharField(
        allow_blank=True,
        help_text="Fill-in-the-middle: the code after the gap that both completions fill (empty: none).",
    )


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


class RevealSideSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The model version that wrote this side.")
    outcome = serializers.CharField(allow_null=True, help_text="Its unit tests' verdict; null without tests.")
    outcome_label = serializers.CharField(allow_blank=True)
    passes = serializers.BooleanField(
        allow_null=True, help_text="null when the prompt has no tests or they did not run."
    )


class RevealSerializer(serializers.Serializer):
    """Shown only after the vote: the pair is blind until then."""

    vote = serializers.IntegerField()
    pair = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    has_tests = serializers.BooleanField()
    left = RevealSideSerializer()
    right = RevealSideSerializer()
    undo_until = serializers.DateTimeField(
        allow_null=True, help_text="POST votes/{id}/undo/ until then; null when it cannot be undone."
    )
    undo_blocked = serializers.CharField(allow_blank=True, help_text="Why the vote cannot be undone, if so.")


class UndoSerializer(serializers.Serializer):
    vote = serializers.IntegerField()
    pair = serializers.IntegerField(help_text="The pair, yours to rank again (it is your next pair).")
    next = PairSerializer(allow_null=True)


class GoldFeedbackSerializer(serializers.Serializer):
    gold = serializers.BooleanField(help_text="The pair had a known answer.")
    agreed = serializers.BooleanField(help_text="Your vote matched it.")
    answer = serializers.CharField(help_text="The known answer as seen on screen: left, right, tie or both_bad.")
    explanation = serializers.CharField(allow_blank=True)
    onboarding_left = serializers.IntegerField(help_text="Onboarding pairs still to come.")


class VoteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pair = serializers.IntegerField()
    choice = serializers.ChoiceField(choices=SCREEN_CHOICES)
    rationale = serializers.CharField(allow_blank=True)
    time_taken_ms = serializers.IntegerField(
        allow_null=True, help_text="Measured by the server: from the pair's hand-out to this vote."
    )
    created_at = serializers.DateTimeField()
    feedback = GoldFeedbackSerializer(
        allow_null=True, help_text="After each of a new volunteer's first (onboarding) votes, all on gold pairs."
    )
    next = PairSerializer(allow_null=True, help_text="Your next pair, or null when none is left for you.")
    reveal = RevealSerializer(help_text="Which model wrote each side and whether it passes its tests.")


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
