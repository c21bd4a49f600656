"""The volunteer side of the API: the next pair, votes, skips and reports.

The vote is the hot path (one request per vote: its response carries the next pair). Input is validated by
the request serializers that the OpenAPI schema documents; bodies go out as plain dicts through orjson.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import metrics
from feedback.api.permissions import IsVolunteer
from feedback.api.rendering import JSONOnlyNegotiation, ORJSONParser, ORJSONRenderer
from feedback.api.schema import AUTH_ERRORS, ErrorSerializer, errors
from feedback.api.throttling import VoteThrottle
from feedback.api.validation import validated
from feedback.models import MAX_ID, Flag, Vote

from . import serializers, services
from .claims import ShownPair, assignment_claim_next_shown
from .onboarding import vote_feedback
from .reveal import vote_reveal
from .undo import vote_id_checked, vote_undo
from .votes import pair_id_checked, vote_record

ERRORS = {
    **errors(e400="Bad or missing fields.", e404="The pair does not exist or is not assigned to you."),
    **AUTH_ERRORS,
}
PAIR_ID = OpenApiParameter(
    "pair_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID, "format": "int64"}, OpenApiParameter.PATH
)
VOTE_ID = OpenApiParameter(
    "vote_id", {"type": "integer", "minimum": 1, "maximum": MAX_ID, "format": "int64"}, OpenApiParameter.PATH
)


# --- output -----------------------------------------------------------------------------------
def pair_body(shown: ShownPair | None) -> dict | None:
    """A pair as the volunteer sees it: left and right as their assignment placed them."""
    if shown is None:
        return None
    left, right = (shown.a_text, shown.b_text) if shown.left_is_a else (shown.b_text, shown.a_text)
    return {
        "pair": shown.pair_id,
        "prompt": {"text": shown.prompt_text, "language": shown.prompt_language, "suffix": shown.prompt_suffix},
        "left": {"text": left},
        "right": {"text": right},
    }


def vote_body(vote: Vote) -> dict:
    return {
        "id": vote.pk,
        "pair": vote.pair_id,
        "choice": vote.screen_choice,
        "rationale": vote.rationale,
        "time_taken_ms": vote.time_taken_ms,
        "created_at": vote.created_at,
    }


def report_body(flag: Flag) -> dict:
    return {
        "id": flag.pk,
        "pair": flag.pair_id,
        "reason": flag.reason,
        "note": flag.note,
        "created_at": flag.created_at,
    }


class _RankingView(APIView):
    permission_classes = [IsVolunteer]
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation


# --- views ------------------------------------------------------------------------------------
class PairNextView(_RankingView):
    @extend_schema(
        operation_id="pairs_next",
        summary="Your next pair to rank",
        description="The same pair again until you vote on it or skip it; 204 when none is left for you.",
        responses={
            200: serializers.PairSerializer,
            204: OpenApiResponse(description="No pair left for you."),
            **ERRORS,
        },
    )
    def get(self, request):
        body = pair_body(assignment_claim_next_shown(user=request.user))
        if body is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(body)


class VoteCreateView(_RankingView):
    throttle_classes = [VoteThrottle]  # the user's and the vote limit, in one round trip

    @extend_schema(
        operation_id="votes_create",
        summary="Vote on a pair assigned to you",
        description=(
            "201 with the vote and your next pair. A retry with the same idempotency_key answers 200 with the "
            "stored vote and counts nothing; a different vote on a pair you already voted on is a 409."
        ),
        request=serializers.VoteRequestSerializer,
        responses={
            201: serializers.VoteSerializer,
            200: OpenApiResponse(serializers.VoteSerializer, description="A replay of a stored vote."),
            409: OpenApiResponse(ErrorSerializer, description="You already voted on (or skipped) this pair."),
            **ERRORS,
        },
    )
    def post(self, request):
        data = validated(serializers.VoteRequestSerializer, request.data)
        result = vote_record(
            user=request.user,
            pair_id=data["pair"],
            screen_choice=data["choice"],
            key=data["idempotency_key"],
            rationale=data.get("rationale", ""),
        )
        metrics.vote_counted(result.created)
        body = vote_body(result.vote)
        body["feedback"] = vote_feedback(user=request.user, result=result)
        body["next"] = pair_body(assignment_claim_next_shown(user=request.user))
        reveal = result.reveal
        body["reveal"] = reveal if reveal is not None else vote_reveal(vote_id=result.vote.pk, user=request.user)
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class VoteUndoView(_RankingView):
    @extend_schema(
        operation_id="votes_undo",
        summary="Undo your vote within a few seconds of casting it",
        description=(
            "Removes the vote (CODEPREF_UNDO_SECONDS after it, 10 by default); the pair is yours to rank again "
            "and comes back as your next pair. 409 once the window has passed or when a dataset snapshot "
            "already holds the vote."
        ),
        parameters=[VOTE_ID],
        request=None,
        responses={
            200: serializers.UndoSerializer,
            404: OpenApiResponse(ErrorSerializer, description="Not one of your votes, or already undone."),
            409: OpenApiResponse(ErrorSerializer, description="Too late, or already in a dataset."),
            **ERRORS,
        },
    )
    def post(self, request, vote_id: int):
        pair_id = vote_undo(user=request.user, vote_id=vote_id_checked(vote_id))
        body = {"vote": vote_id, "pair": pair_id, "next": pair_body(assignment_claim_next_shown(user=request.user))}
        return Response(body)


class PairSkipView(_RankingView):
    @extend_schema(
        operation_id="pairs_skip",
        summary="Pass on a pair assigned to you",
        description="It is not shown to you again. The answer carries your next pair.",
        parameters=[PAIR_ID],
        request=None,
        responses={
            200: serializers.SkipSerializer,
            409: OpenApiResponse(ErrorSerializer, description="You already voted on this pair."),
            **ERRORS,
        },
    )
    def post(self, request, pair_id: int):
        services.pair_skip(user=request.user, pair_id=pair_id_checked(pair_id))
        return Response({"pair": pair_id, "next": pair_body(assignment_claim_next_shown(user=request.user))})


class ReportCreateView(_RankingView):
    @extend_schema(
        operation_id="reports_create",
        summary="Report a pair: broken, harmful, personal data, wrong language, duplicate, or other (with a note)",
        description="201 for a new report; 200 when you already made the same report on this pair.",
        request=serializers.ReportRequestSerializer,
        responses={
            201: serializers.ReportSerializer,
            200: OpenApiResponse(serializers.ReportSerializer, description="The same report, already stored."),
            **ERRORS,
        },
    )
    def post(self, request):
        data = validated(serializers.ReportRequestSerializer, request.data)
        flag, created = services.pair_report(
            user=request.user, pair_id=data["pair"], reason=data["reason"], note=data.get("note", "")
        )
        return Response(report_body(flag), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
