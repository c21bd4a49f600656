"""A pair as a maintainer reviews it in the admin: both completions side by side, highlighted as volunteers see
them, each with its model's name and its test verdict, then the votes cast on it. All text goes through Pygments
(which escapes every token) or ``format_html``."""

from __future__ import annotations

from collections import Counter

from django.urls import reverse
from django.utils.html import format_html, format_html_join

from feedback.models import Completion, Pair, Vote

from .highlight import highlight_code

CHOICE_WORDS = {
    Vote.Choice.A: "A better",
    Vote.Choice.B: "B better",
    Vote.Choice.TIE: "tie",
    Vote.Choice.BOTH_BAD: "both bad",
}


def _side(letter: str, completion: Completion, language: str):
    version = completion.model_version
    verdict = completion.get_outcome_display()
    return format_html(
        '<section class="pair-review-side" aria-label="completion {}">'
        '<h3><span class="pair-review-letter">{}</span> <a href="{}">{}</a> '
        '<span class="pair-review-verdict verdict-{}">tests: {}</span></h3>'
        '<p class="pair-review-meta"><a href="{}">completion {}</a></p>{}</section>',
        letter,
        letter,
        reverse("admin:feedback_modelversion_change", args=[version.pk]),
        version.name,
        completion.outcome,
        verdict,
        reverse("admin:feedback_completion_change", args=[completion.pk]),
        completion.pk,
        highlight_code(completion.text, language),
    )


def pair_sides(pair: Pair):
    """Completions A and B side by side (stacked on a narrow screen)."""
    return format_html(
        '<div class="pair-review">{}{}</div>',
        _side("A", pair.completion_a, pair.language),
        _side("B", pair.completion_b, pair.language),
    )


def pair_votes(pair: Pair):
    """The tally, then each vote: who, what (in A/B terms and as the volunteer saw it), why, how fast."""
    votes = list(pair.votes.select_related("volunteer").order_by("created_at"))
    if not votes:
        return format_html('<p class="pair-review-none">{}</p>', "No votes yet.")
    tally = Counter(vote.choice for vote in votes)
    summary = " · ".join(f"{word} {tally.get(choice, 0)}" for choice, word in CHOICE_WORDS.items())
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                vote.volunteer.get_username(),
                CHOICE_WORDS.get(vote.choice, vote.choice),
                vote.screen_choice,
                vote.rationale or "–",
                f"{vote.time_taken_ms / 1000:.1f} s" if vote.time_taken_ms is not None else "–",
                vote.created_at.strftime("%Y-%m-%d %H:%M"),
            )
            for vote in votes
        ),
    )
    return format_html(
        '<p class="pair-review-tally">{}</p><table class="pair-review-votes"><thead><tr>'
        '<th scope="col">volunteer</th><th scope="col">choice</th><th scope="col">as seen</th>'
        '<th scope="col">rationale</th><th scope="col">time taken</th><th scope="col">at</th>'
        "</tr></thead><tbody>{}</tbody></table>",
        summary,
        rows,
    )
