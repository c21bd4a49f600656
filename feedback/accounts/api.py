"""API tokens: exchange a username and password for a knox token (hashed at rest, expiring)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.permissions import TERMS_MESSAGE
from feedback.api.rendering import ORJSONParser, ORJSONRenderer
from feedback.api.schema import errors
from feedback.api.throttling import TokenThrottle
from feedback.api.validation import validated

from . import serializers
from .services import api_token_issue, volunteer_has_accepted_terms


class TokenCreateView(APIView):
    """Password guessing meets the login lock-out (per account and address, ``lockout.py``: a 429 once
    locked) and the "token" throttle (per address)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [TokenThrottle]
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        operation_id="token_create",
        summary="Get an API token",
        request=serializers.TokenRequestSerializer,
        responses={
            200: serializers.TokenSerializer,
            **errors(
                e400="Missing or wrong credentials.",
                e403="The contribution terms are not accepted.",
                e429="Too many attempts from your address, or too many failed logins for this account from it "
                "(locked out for a cool-off): wait Retry-After seconds.",
            ),
        },
        auth=[],
    )
    def post(self, request):
        credentials = validated(serializers.TokenRequestSerializer, request.data)
        user = authenticate(request._request, username=credentials["username"], password=credentials["password"])
        if user is None or not user.is_active:
            return Response({"error": "unable to log in with these credentials"}, status=status.HTTP_400_BAD_REQUEST)
        if not volunteer_has_accepted_terms(user):
            # Votes are released under the contribution terms; IsVolunteer trusts tokens to imply them.
            return Response({"error": TERMS_MESSAGE}, status=status.HTTP_403_FORBIDDEN)
        instance, token = api_token_issue(user=user)
        return Response({"token": token, "expiry": instance.expiry})
