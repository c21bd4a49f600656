"""API errors: always ``{"error": message}`` with a 4xx status, never a 500 for bad input."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from feedback.errors import Conflict, NotFound, ServiceError


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
    if isinstance(exc, NotFound):
        return Response({"error": str(exc)}, status=status.HTTP_404_NOT_FOUND)
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


def not_found(request, exception=None):
    """``handler404``: under /api/ a JSON 404 (a path parameter of the wrong type never reaches a view), the
    site's own page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"error": f"nothing at {request.path_info[:200]!r}"}, status=404)
    return page_not_found(request, exception)
