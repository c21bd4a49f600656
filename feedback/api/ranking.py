"""The volunteer side of the API: the next pair, votes, skips and reports.

The vote is the hot path (one request per vote: its response carries the next pair). Its few input fields
are checked here by hand rather than by serializer machinery, and bodies go out through orjson; the
serializers in ``serializers.py`` describe the same contract for the OpenAPI schema.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import selectors, services
from feedback.models import Flag, Vote
from feedback.services import MAX_ID, MAX_KEY_LENGTH, MAX_MS, ServiceError

from . import serializers
from .permissions import IsVolunteer
from .rendering import JSONOnlyNegotiation, ORJSONParser, ORJSONRenderer

ERRORS = {
    400: OpenApiResponse(serializers.ErrorSerializer, description="Bad or missing fields, or a pair not yours."),
    401: OpenApiResponse(serializers.ErrorSerializer, description="No or bad credentials."),
    403: OpenApiResponse(serializers.ErrorSerializer, description="Not allowed."),
}


# --- input ------------------------------------------------------------------------------------
def _body(request) -> dict:
    data = request.data
    if not isinstance(data, dict):
        raise ServiceError("the body must be a JSON object")
    return data


def _id(value, name: str) -> int:
    if value is None:
        raise ServiceError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ServiceError(f"{name} must be a positive integer id; got {value!r:.40}")
    return value


def _text(data: dict, name: str, *, required: bool = False, max_length: int) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise ServiceError(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise ServiceError(f"{name} must be a string")
    if len(value) > max_length:
        raise ServiceError(f"{name} must be at most {max_length} characters")
    if "\x00" in value:
        raise ServiceError(f"{name} must not contain NUL characters")
    return value


def _milliseconds(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MS:
        raise ServiceError(f"{name} must be a whole number of milliseconds")
    return value


# --- output -----------------------------------------------------------------------------------
def pair_body(shown: selectors.ShownPair | None) -> dict | None:
    """A pair as the volunteer sees it: left and right as their assignment placed them."""
    if shown is None:
        return None
    left, right = (shown.a_text, shown.b_text) if shown.left_is_a else (shown.b_text, shown.a_text)
    return {
        "pair": shown.pair_id,
        "prompt": {"text": shown.prompt_text, "language": shown.prompt_language},
        "left": {"text": left},
        "right": {"text": right},
    }


def vote_body(vote: Vote) -> dict:
    return {
        "id": vote.pk,
        "pair": vote.pair_id,
        "choice": vote.screen_choice,
        "rationale": vote.rationale,
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
        body = pair_body(selectors.next_pair_shown(request.user))
        if body is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(body)


class VoteCreateView(_RankingView):
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
            409: OpenApiResponse(serializers.ErrorSerializer, description="You already voted on this pair."),
            **ERRORS,
        },
    )
    def post(self, request):
        data = _body(request)
        pair_id = _id(data.get("pair"), "pair")
        choice = _text(data, "choice", required=True, max_length=16)
        key = _text(data, "idempotency_key", required=True, max_length=MAX_KEY_LENGTH)
        rationale = _text(data, "rationale", max_length=4 * services.MAX_RATIONALE_LENGTH)
        result = services.vote_record(
            user=request.user,
            pair_id=pair_id,
            screen_choice=choice,
            key=key,
            rationale=rationale,
            time_taken_ms=_milliseconds(data, "time_taken_ms"),
        )
        body = vote_body(result.vote)
        body["next"] = pair_body(selectors.next_pair_shown(request.user))
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class PairSkipView(_RankingView):
    @extend_schema(
        operation_id="pairs_skip",
        summary="Pass on a pair assigned to you",
        description="It is not shown to you again. The answer carries your next pair.",
        request=None,
        responses={
            200: serializers.SkipSerializer,
            409: OpenApiResponse(serializers.ErrorSerializer, description="You already voted on this pair."),
            **ERRORS,
        },
    )
    def post(self, request, pair_id: int):
        services.pair_skip(user=request.user, pair_id=_id(pair_id, "pair"))
        return Response({"pair": pair_id, "next": pair_body(selectors.next_pair_shown(request.user))})


class ReportCreateView(_RankingView):
    @extend_schema(
        operation_id="reports_create",
        summary="Report a pair: broken, harmful, or containing personal data",
        description="201 for a new report; 200 when you already made the same report on this pair.",
        request=serializers.ReportRequestSerializer,
        responses={
            201: serializers.ReportSerializer,
            200: OpenApiResponse(serializers.ReportSerializer, description="The same report, already stored."),
            **ERRORS,
        },
    )
    def post(self, request):
        data = _body(request)
        flag, created = services.flag_create(
            user=request.user,
            pair_id=_id(data.get("pair"), "pair"),
            reason=_text(data, "reason", required=True, max_length=32),
            note=_text(data, "note", max_length=2000),
        )
        return Response(report_body(flag), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
