"""Puts the dashboard at the top of the admin's index page (for staff who may see it: every admin user)."""

from __future__ import annotations

import functools

from django.contrib import admin

from .selectors import dashboard

INDEX_TEMPLATE = "admin/feedback/index_with_dashboard.html"


def _with_dashboard(index):
    @functools.wraps(index)
    def index_with_dashboard(request, extra_context=None):
        return index(request, extra_context={"dashboard": dashboard(), **(extra_context or {})})

    return index_with_dashboard


# The site's URLs are built after every admin module is loaded, so they pick up the wrapped view.
admin.site.index = _with_dashboard(admin.site.index)
admin.site.index_template = INDEX_TEMPLATE
