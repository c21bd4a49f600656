"""Volunteer pages: the home page, the ranking page and its three actions (vote, skip, report).

Every action is a plain form POST that redirects back to the ranking page (works without JavaScript).
``rank.js`` sends the same POSTs with ``X-Requested-With: fetch`` and gets the next pair's HTML fragment
instead of a redirect, so the page moves on without a reload.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from feedback import metrics
from feedback.accounts.views import terms_accepted
from feedback.errors import Conflict, ServiceError
from feedback.models import Assignment, Flag

from . import highlight, selectors, services
from .claims import assignment_claim_next
from .forms import ReportForm, SkipForm, VoteForm
from .votes import vote_record

PARTIAL_HEADERS = {"HTTP_X_REQUESTED_WITH": "fetch", "HTTP_HX_REQUEST": "true"}


def home(request):
    if request.user.is_authenticated:
        return redirect("rank")
    return render(request, "feedback/home.html")


def wants_fragment(request) -> bool:
    return any(request.META.get(name, "").lower() == value for name, value in PARTIAL_HEADERS.items())


def _side(completion, *, label: str, screen: str, language: str) -> dict:
    return {
        "label": label,
        "screen": screen,
        "html": highlight.highlight_code(completion.text, language),
        "outcome": completion.outcome,
        "outcome_label": completion.get_outcome_display(),
        "lines": max(1, len(highlight.code_lines(completion.text))),
    }


def _pair_context(assignment: Assignment | None) -> dict:
    if assignment is None:
        return {"assignment": None}
    pair = assignment.pair
    prompt = pair.prompt
    a, b = pair.completion_a, pair.completion_b
    left, right = (a, b) if assignment.left_is_a else (b, a)
    return {
        "assignment": assignment,
        "pair": pair,
        "prompt": prompt,
        "prompt_html": highlight.highlight_code(prompt.text, prompt.language),
        "lexer_name": highlight.lexer_name(prompt.language),
        "left": _side(left, label="A", screen="left", language=prompt.language),
        "right": _side(right, label="B", screen="right", language=prompt.language),
        "diff_html": highlight.highlight_diff(left.text, right.text),
        # A fresh key per rendering: a double click or a retried POST of this form is counted once.
        "key": uuid.uuid4().hex,
        "show_outcomes": settings.CODEPREF["SHOW_TEST_OUTCOMES"],
        "report_reasons": Flag.Reason.choices,
    }


def _next_assignment(user) -> Assignment | None:
    assignment = assignment_claim_next(user=user)
    if assignment is None:
        return None
    return selectors.assignment_shown(assignment.pk)


def _render_rank(request, *, notice: str = "", error: str = "", status: int = 200):
    context = _pair_context(_next_assignment(request.user))
    context.update(
        notice=notice,
        error=error,
        votes_done=selectors.votes_of(request.user).count(),
    )
    fragment = wants_fragment(request)
    response = render(request, "feedback/_pair.html" if fragment else "feedback/rank.html", context, status=status)
    if fragment:
        # rank.js swaps in only answers that say they are this fragment (not a CSRF or error page).
        response["X-Rank-Fragment"] = "1"
    patch_vary_headers(response, ["X-Requested-With", "HX-Request"])
    return response


def _done(request, notice: str):
    """After a successful action: the next pair's fragment for fetch, else a redirect (post/redirect/get)."""
    if wants_fragment(request):
        return _render_rank(request, notice=notice)
    messages.success(request, notice)
    return redirect("rank")


def _refused(request, error: str, status: int = 400):
    """A refused action: the message with a 4xx status, and the pair the volunteer should look at now."""
    return _render_rank(request, error=error, status=status)


def _form_error(form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


@terms_accepted
def rank(request):
    return _render_rank(request)


@require_POST
@terms_accepted
def vote(request):
    form = VoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, _form_error(form))
    data = form.cleaned_data
    try:
        result = vote_record(
            user=request.user,
            pair_id=data["pair"],
            screen_choice=data["choice"],
            key=data["key"],
            rationale=data["rationale"],
        )
        metrics.vote_counted(result.created)
    except Conflict as exc:
        return _refused(request, str(exc), status=409)
    except ServiceError as exc:
        return _refused(request, str(exc))
    return _done(request, "Vote saved." if result.created else "That vote was already saved.")


@require_POST
@terms_accepted
def skip(request):
    form = SkipForm(request.POST)
    if not form.is_valid():
        return _refused(request, _form_error(form))
    try:
        services.pair_skip(user=request.user, pair_id=form.cleaned_data["pair"])
    except Conflict as exc:
        return _refused(request, str(exc), status=409)
    except ServiceError as exc:
        return _refused(request, str(exc))
    return _done(request, "Skipped.")


@require_POST
@terms_accepted
def report(request):
    form = ReportForm(request.POST)
    if not form.is_valid():
        return _refused(request, _form_error(form))
    try:
        services.pair_report(
            user=request.user,
            pair_id=form.cleaned_data["pair"],
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            move_on=True,
        )
    except ServiceError as exc:
        return _refused(request, str(exc))
    return _done(request, "Thank you, the pair was reported to the moderators.")
