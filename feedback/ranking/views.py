"""Volunteer pages: the home page, the ranking page and its three actions (vote, skip, report).

Every action is a plain form POST that redirects back to the ranking page (works without JavaScript).
``rank.js`` sends the same POSTs with ``X-Requested-With: fetch`` and gets the next pair's HTML fragment
instead of a redirect, so the page moves on without a reload.
"""

from __future__ import annotations

import math
import uuid
from math import ceil

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from feedback import metrics
from feedback.accounts.views import terms_accepted
from feedback.api.throttling import vote_rate_wait
from feedback.errors import Conflict, ServiceError
from feedback.models import Assignment, Flag, Volunteer

from . import highlight, selectors, services
from .claims import assignment_claim_next
from .forms import SCREEN_CHOICES, ReportForm, SkipForm, UndoForm, VoteForm
from .onboarding import gold_missed, vote_feedback
from .reveal import vote_reveal
from .undo import vote_undo
from .votes import vote_record

GOLD_FEEDBACK_KEY = "codepref_gold_feedback"
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
        # Fill-in-the-middle: the code after the gap, shown after the two completions fill it.
        "suffix_html": highlight.highlight_code(prompt.suffix, prompt.language) if prompt.suffix.strip() else "",
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


# The session key holding the last vote's id between a vote's redirect and the page that reveals it.
REVEAL_SESSION_KEY = "reveal_vote"


def _reveal_of(request, vote_id: int | None) -> dict | None:
    """The reveal of the vote just made: passed in after a fetch vote, or left in the session by a form POST."""
    if vote_id is None:
        vote_id = request.session.pop(REVEAL_SESSION_KEY, None)
    if not isinstance(vote_id, int):
        return None
    reveal = vote_reveal(vote_id=vote_id, user=request.user)
    if reveal is not None:
        reveal["choice_label"] = dict(SCREEN_CHOICES)[reveal["choice"]]
        until = reveal["undo_until"]
        reveal["undo_left"] = math.ceil((until - timezone.now()).total_seconds()) if until else 0
        reveal["sides"] = ((reveal["left"], "A", "left"), (reveal["right"], "B", "right"))
    return reveal


def _render_rank(
    request,
    *,
    notice: str = "",
    error: str = "",
    status: int = 200,
    reveal_vote: int | None = None,
    gold_feedback: dict | None = None,
):
    context = _pair_context(_next_assignment(request.user))
    context.update(
        notice=notice,
        error=error,
        progress=(progress := selectors.progress_of(request.user)),
        votes_done=progress["total"],
        reveal=_reveal_of(request, reveal_vote),
        gold_feedback=gold_feedback or request.session.pop(GOLD_FEEDBACK_KEY, None),
    )
    fragment = wants_fragment(request)
    response = render(request, "feedback/_pair.html" if fragment else "feedback/rank.html", context, status=status)
    if fragment:
        # rank.js swaps in only answers that say they are this fragment (not a CSRF or error page).
        response["X-Rank-Fragment"] = "1"
    patch_vary_headers(response, ["X-Requested-With", "HX-Request"])
    return response


def _done(request, notice: str, *, reveal_vote: int | None = None, gold_feedback: dict | None = None):
    """After a successful action: the next pair's fragment for fetch, else a redirect (post/redirect/get)."""
    if wants_fragment(request):
        return _render_rank(request, notice=notice, reveal_vote=reveal_vote, gold_feedback=gold_feedback)
    messages.success(request, notice)
    if reveal_vote is not None:
        request.session[REVEAL_SESSION_KEY] = reveal_vote
    if gold_feedback:
        request.session[GOLD_FEEDBACK_KEY] = gold_feedback  # shown once, on the page redirected to
    return redirect("rank")


def _refused(request, error: str, status: int = 400):
    """A refused action: the message with a 4xx status, and the pair the volunteer should look at now."""
    return _render_rank(request, error=error, status=status)


def _form_error(form) -> str:
    return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())


def guidelines(request):
    return render(request, "feedback/guidelines.html")


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
    wait = vote_rate_wait(request.user)  # the API's "votes" rate: one count for both ways of voting
    if wait is not None:
        response = _refused(request, f"Votes are coming faster than anyone can read: wait {ceil(wait)} s.", 429)
        response["Retry-After"] = str(ceil(wait))
        return response
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
    feedback = vote_feedback(user=request.user, result=result)
    return _done(
        request,
        "Vote saved." if result.created else "That vote was already saved.",
        reveal_vote=result.vote.pk,
        gold_feedback=feedback,
    )


@require_POST
@terms_accepted
def undo(request):
    form = UndoForm(request.POST)
    if not form.is_valid():
        return _refused(request, _form_error(form))
    try:
        vote_undo(user=request.user, vote_id=form.cleaned_data["vote"])
    except Conflict as exc:
        return _refused(request, str(exc), status=409)
    except ServiceError as exc:
        return _refused(request, str(exc))
    return _done(request, "Vote undone: the pair is back for you to rank again.")


@terms_accepted
def quality(request):
    """The volunteer's quality checks: trust, and the gold pairs they missed with the known answer and why."""
    volunteer = Volunteer.objects.filter(user=request.user).first()
    return render(request, "feedback/quality.html", {"volunteer": volunteer, "missed": gold_missed(request.user)})


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
