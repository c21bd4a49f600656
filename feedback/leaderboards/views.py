"""The public leaderboard page, its plot, and the signed-in volunteer's listing toggle (a plain form POST)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback.models import Volunteer

from .selectors import leaderboard_current, leaderboard_plot
from .services import volunteer_listing_set


def _matrix(body: dict) -> dict:
    """Head-to-head win rates as rows of cells, in the table's order (None where two models never met)."""
    names = [row["model"] for row in body["models"] if row["rating"] is not None]
    found = {(w["model"], w["opponent"]): w for w in body["win_rates"]}
    rows = [{"model": name, "cells": [found.get((name, other)) for other in names]} for name in names]
    return {"names": names, "rows": rows}


def _listed(user) -> bool | None:
    if not user.is_authenticated:
        return None
    listed = Volunteer.objects.filter(user=user).values_list("listed_on_leaderboard", flat=True).first()
    return True if listed is None else listed


@require_GET
def leaderboard(request):
    body = leaderboard_current()
    context = {
        "board": body,
        "matrix": _matrix(body),
        "has_plot": any(row["rating"] is not None for row in body["models"]),
        "listed": _listed(request.user),
    }
    return render(request, "feedback/leaderboard.html", context)


@require_GET
def plot(request):
    png = leaderboard_plot()
    if not png:
        raise Http404("no leaderboard plot yet")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_POST
@login_required
def listing(request):
    choice = request.POST.get("listed", "")
    if choice not in ("yes", "no"):
        messages.error(request, "Choose yes or no.")
        return redirect("leaderboard")
    listed = volunteer_listing_set(user=request.user, listed=choice == "yes")
    messages.success(
        request,
        "You are listed on the contributors leaderboard."
        if listed
        else "You are no longer listed on the contributors leaderboard.",
    )
    return redirect("leaderboard")
