"""Site-wide answers that belong to no package: ``/favicon.ico`` (browsers ask for it whatever the page says)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = Path(__file__).resolve().parent / "static" / "feedback" / "favicon.ico"


@cache
def _favicon() -> bytes:
    return FAVICON.read_bytes()


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    return HttpResponse(_favicon(), content_type="image/x-icon")
