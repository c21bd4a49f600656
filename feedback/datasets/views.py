"""The volunteer's profile page: their progress and what their votes became (``impact.py``)."""

from __future__ import annotations

from django.shortcuts import render

from feedback.accounts.views import terms_accepted
from feedback.ranking.selectors import progress_of

from .impact import impact_of


@terms_accepted
def me(request):
    context = {"impact": impact_of(request.user), "progress": progress_of(request.user)}
    return render(request, "feedback/me.html", context)
