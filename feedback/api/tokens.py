"""API tokens: exchange a username and password for a knox token (hashed at rest, expiring)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from feedback.models import Volunteer
from feedback.services import ServiceError

from . import serializers
from .permissions import TERMS_MESSAGE
from .rendering import ORJSONParser, ORJSONRenderer


def _credential(data, name: str) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ServiceError(f"{name} is required (a string)")
    if len(value) > 4096 or "\x00" in value:
        raise ServiceError("unable to log in with these credentials")
    return value


class TokenCreateView(APIView):
    """Password guessing is slowed by the "token" throttle scope (per client address)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token"
    parser_classes = [ORJSONParser]
    renderer_classes = [ORJSONRenderer]

    @extend_schema(
        operation_id="token_create",
        summary="Get an API token",
        request=serializers.TokenRequestSerializer,
        responses={
            200: serializers.TokenSerializer,
            400: OpenApiResponse(serializers.ErrorSerializer, description="Missing or wrong credentials."),
            403: OpenApiResponse(serializers.ErrorSerializer, description="The contribution terms are not accepted."),
            429: OpenApiResponse(serializers.ErrorSerializer, description="Too many attempts: wait and retry."),
        },
        auth=[],
    )
    def post(self, request):
        username = _credential(request.data, "username")
        password = _credential(request.data, "password")
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            return Response({"error": "unable to log in with these credentials"}, status=status.HTTP_400_BAD_REQUEST)
        if not Volunteer.objects.filter(user=user, accepted_terms_at__isnull=False).exists():
            # Votes are released under the contribution terms; IsVolunteer trusts tokens to imply them.
            return Response({"error": TERMS_MESSAGE}, status=status.HTTP_403_FORBIDDEN)
        # knox leaves expired tokens in place until they are presented: clear this user's here.
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
        instance, token = AuthToken.objects.create(user)
        return Response({"token": token, "expiry": instance.expiry})
