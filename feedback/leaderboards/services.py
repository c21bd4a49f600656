"""Leaderboard writes: the refresh (off the request path) and a volunteer's choice to be listed or not."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from feedback import dispatch
from feedback.models import Leaderboard, Volunteer

from .contributors import contributors_board
from .plot import ratings_png
from .ratings import model_board

KEY = "current"
REFRESH_TASK = "feedback.tasks.leaderboard_refresh"
logger = logging.getLogger(__name__)


def leaderboard_refresh() -> dict:
    """Recompute both leaderboards and the plot, and replace the stored row; returns a summary. Safe to repeat."""
    options = settings.CODEPREF
    started = time.monotonic()
    now = timezone.now()
    body = {
        **model_board(rounds=options["LEADERBOARD_BOOTSTRAP_ROUNDS"], seed=options["LEADERBOARD_SEED"]),
        "contributors": contributors_board(now=now, limit=options["LEADERBOARD_CONTRIBUTORS"]),
    }
    png = ratings_png(body["models"])
    Leaderboard.objects.update_or_create(key=KEY, defaults={"computed_at": now, "body": body, "plot_png": png})
    seconds = round(time.monotonic() - started, 3)
    logger.info(
        "leaderboard refreshed: %d model(s), %d comparison(s), %.3f s",
        len(body["models"]),
        body["comparisons"],
        seconds,
    )
    return {"models": len(body["models"]), "comparisons": body["comparisons"], "seconds": seconds}


def leaderboard_request_refresh() -> None:
    """Ask a worker for a refresh (after the current transaction commits)."""
    dispatch.enqueue(REFRESH_TASK)


def volunteer_listing_set(*, user: AbstractBaseUser, listed: bool) -> bool:
    """Show or hide this volunteer on the contributors leaderboard; returns the new setting.

    Hidden at once on the page and in the API (they filter the stored list by the current setting); a refresh
    is requested so that the next one down takes the freed place.
    """
    with transaction.atomic():
        volunteer, _ = Volunteer.objects.select_for_update().get_or_create(user=user)
        changed = volunteer.listed_on_leaderboard != listed
        if changed:
            volunteer.listed_on_leaderboard = listed
            volunteer.save(update_fields=["listed_on_leaderboard"])
    if changed:
        leaderboard_request_refresh()
    return listed
