"""API errors: always ``{"error": message}`` with a 4xx status, never a 500 for bad input."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from feedback.errors import Conflict, ServiceError


def _message(detail) -> str:
    if isinstance(detail, dict):
        parts = []
        for key, value in detail.items():
            text = _message(value)
            parts.append(text if key in ("detail", "non_field_errors") else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(detail, (list, tuple)):
        return "; ".join(_message(item) for item in detail)
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, Conflict):
        return Response({"error": str(exc)}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, ServiceError):
        return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.messages)
    response = drf_exception_handler(exc, context)
    if response is not None:
        body = {"error": _message(response.data)}
        if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
            body["fields"] = response.data
        response.data = body
    return response
