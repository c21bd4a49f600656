"""The leaderboard API.

    GET   /api/v1/leaderboard/           anyone, signed in or not (the same data as the public page)
    GET   /api/v1/leaderboard/me/        signed in: whether you are listed among the contributors
    PATCH /api/v1/leaderboard/me/        signed in: {"listed": false} to opt out, true to be listed again
    POST  /api/v1/leaderboard/refresh/   maintainers: recompute now (on a worker); 202

Reads come from the stored leaderboard (feedback.tasks.leaderboard_refresh writes it): no request refits.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.permissions import IsMaintainer
from feedback.api.rendering import JSONOnlyNegotiation, ORJSONParser, ORJSONRenderer
from feedback.api.schema import AUTH_ERRORS, errors
from feedback.api.validation import validated
from feedback.models import Volunteer

from . import serializers
from .selectors import leaderboard_current
from .services import leaderboard_request_refresh, volunteer_listing_set


class _JSONView(APIView):
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation


def _public(body: dict) -> dict:
    """The stored body without user ids (the API shows contributors by username only)."""
    contributors = {
        period: [{"rank": e["rank"], "username": e["username"], "votes": e["votes"]} for e in entries]
        for period, entries in body["contributors"].items()
    }
    return {**body, "contributors": contributors}


class LeaderboardView(_JSONView):
    permission_classes = [AllowAny]
    authentication_classes: list = []  # public: a bad token must not turn a public read into a 401

    @extend_schema(
        operation_id="leaderboard_retrieve",
        summary="The model and contributors leaderboards",
        description=serializers.MODELS_HELP + " Computed off the request path (every 10 minutes, and on demand); "
        "ci_low and ci_high are simultaneous 95% intervals (bootstrap max-t band over resamples of the votes): "
        "together they hold every rated model's rating at once. No authentication needed.",
        auth=[],
        responses={200: serializers.LeaderboardSerializer},
    )
    def get(self, request):
        return Response(_public(leaderboard_current()))


class ListingView(_JSONView):
    # Any account, terms accepted or not: choosing not to be listed needs no contribution first.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="leaderboard_me_retrieve",
        summary="Whether you are listed on the contributors leaderboard",
        responses={200: serializers.ListingSerializer, **AUTH_ERRORS},
    )
    def get(self, request):
        listed = Volunteer.objects.filter(user=request.user).values_list("listed_on_leaderboard", flat=True).first()
        return Response({"listed": True if listed is None else listed})

    @extend_schema(
        operation_id="leaderboard_me_update",
        summary="Opt out of (or back into) the contributors leaderboard",
        description="Listed by username by default. Opting out hides you at once; your votes still count. A "
        "body without listed changes nothing.",
        request=serializers.ListingSerializer,
        responses={
            200: serializers.ListingSerializer,
            **errors(e400="listed missing or not a boolean."),
            **AUTH_ERRORS,
        },
    )
    def patch(self, request):
        # A partial update: a body without "listed" changes nothing and answers the current setting.
        if isinstance(request.data, dict) and "listed" not in request.data:
            return self.get(request)
        data = validated(serializers.ListingSerializer, request.data)
        return Response({"listed": volunteer_listing_set(user=request.user, listed=data["listed"])})


class RefreshView(_JSONView):
    permission_classes = [IsMaintainer]

    @extend_schema(
        operation_id="leaderboard_refresh",
        summary="Recompute the leaderboards now",
        description="Queues feedback.tasks.leaderboard_refresh; GET /api/v1/leaderboard/ shows the result once "
        "its computed_at moves.",
        request=None,
        responses={202: serializers.RefreshSerializer, **AUTH_ERRORS},
    )
    def post(self, request):
        leaderboard_request_refresh()
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
