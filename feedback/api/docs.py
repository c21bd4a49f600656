"""The API's documentation pages: Swagger UI and Redoc, served from this site's static files.

Both bundles come from drf-spectacular-sidecar (pinned in requirements.txt), so the pages need no CDN and pass
the site's CSP: no inline script (Swagger UI's start-up script is its own same-origin request, drf-spectacular's
split view) and no inline style (the page's few rules are in ``feedback/api_docs.css``).

Redoc needs two exceptions, on its own page only: its bundle inserts ``<style>`` elements while it loads, before
any nonce can be handed to it, so that page's ``style-src`` allows inline styles (scripts stay nonce-only); and its
search runs in a worker made from a ``blob:`` URL. ``feedback/redoc_init.js`` also keeps its footer's logo from
being fetched from Redocly's CDN.
"""

from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_replace
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    url_name = "api-schema"
    template_name = "feedback/api/swagger_ui.html"


@method_decorator(csp_replace({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}), name="dispatch")
class RedocDocsView(SpectacularRedocView):
    url_name = "api-schema"
    template_name = "feedback/api/redoc.html"
