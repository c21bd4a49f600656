"""The contribution terms: the page that asks for them, and the guard on every ranking page."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .forms import TermsForm
from .services import volunteer_has_accepted_terms, volunteer_terms_accept


def terms_accepted(view):
    """Votes are released under the contribution licence: an account must have accepted it to rank."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not volunteer_has_accepted_terms(request.user):
            return redirect("rank-terms")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


@login_required
@require_http_methods(["GET", "POST"])
def terms(request):
    if volunteer_has_accepted_terms(request.user):
        return redirect("rank")
    form = TermsForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        volunteer_terms_accept(user=request.user)
        return redirect("rank")
    return render(request, "feedback/terms.html", {"form": form}, status=400 if form.errors else 200)
