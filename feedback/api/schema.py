"""What every API operation shares in the OpenAPI schema: the error body and the common error responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What was wrong, for a person to read.")


def errors(**descriptions: str) -> dict[int, OpenApiResponse]:
    """Error responses for ``extend_schema``: ``errors(e400="...", e409="...")``."""
    return {int(code[1:]): OpenApiResponse(ErrorSerializer, description=text) for code, text in descriptions.items()}


AUTH_ERRORS = errors(
    e401="No or bad credentials.",
    e403="Not allowed.",
    e429="Too many requests (API_USER_RATE, API_VOTE_RATE): wait Retry-After seconds.",
)
