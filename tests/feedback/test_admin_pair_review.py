"""The pair review in the admin: both completions side by side, highlighted, with their models' names, verdicts
and the votes; the pair list names the models instead of "completion 25 of 7 by 3"."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from feedback.models import ModelVersion, Pair, Vote
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair():
    strong = ModelVersion.objects.create(name="strong-v1", backend="transformers", target="/s")
    weak = ModelVersion.objects.create(name="weak-<b>v2</b>", backend="transformers", target="/w")
    pair = factories.PairFactory(
        completion_a__model_version=strong,
        completion_a__text="    return x + 1\n",
        completion_a__outcome="passed",
        completion_b__model_version=weak,
        completion_b__text="    return x  # </pre><script>alert(1)</script>\n",
        completion_b__outcome="failed",
    )
    for n, (choice, left_is_a, rationale) in enumerate(
        [("a", True, "B ignores the +1"), ("a", False, ""), ("b", True, "shorter <i>is</i> better")]
    ):
        user = factories.UserFactory(username=f"rater{n}")
        Vote.objects.create(
            pair=pair,
            volunteer=user,
            choice=choice,
            left_is_a=left_is_a,
            idempotency_key=f"k{n}",
            rationale=rationale,
            time_taken_ms=4200 + n,
        )
    Pair.objects.filter(pk=pair.pk).update(votes_count=3)
    return pair


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_change_page_shows_both_sides_highlighted_with_model_names_and_verdicts(admin_client, pair):
    page = admin_client.get(reverse("admin:feedback_pair_change", args=[pair.pk])).content.decode()
    sides = page.split('<div class="pair-review">')[1]
    a, b = sides.split('<section class="pair-review-side" aria-label="completion B">')
    b = b.split("</section>")[0]
    assert "strong-v1" in a and "tests: passed" in a and 'class="verdict-passed' not in a
    assert 'verdict-passed">tests: passed' in a
    assert "weak-&lt;b&gt;v2&lt;/b&gt;" in b and 'verdict-failed">tests: failed' in b
    # Highlighted by Pygments (keywords get their class), and the untrusted text stays text.
    assert '<span class="k">return</span>' in a
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in b and "<script>alert(1)" not in page
    assert reverse("admin:feedback_modelversion_change", args=[pair.completion_a.model_version_id]) in a


def test_the_change_page_lists_the_votes_with_the_tally_and_each_rationale(admin_client, pair):
    text = text_of(admin_client.get(reverse("admin:feedback_pair_change", args=[pair.pk])).content.decode())
    assert "A better 2 · B better 1 · tie 0 · both bad 0" in text
    assert "rater0 A better left B ignores the +1 4.2 s" in text
    assert "rater1 A better right – 4.2 s" in text  # A was on the right for rater1
    assert "rater2 B better right shorter &lt;i&gt;is&lt;/i&gt; better 4.2 s" in text


def test_a_pair_without_votes_says_so(admin_client):
    pair = factories.PairFactory()
    text = text_of(admin_client.get(reverse("admin:feedback_pair_change", args=[pair.pk])).content.decode())
    assert "No votes yet." in text


def test_the_pair_list_names_the_models_not_completion_ids(admin_client, pair):
    page = admin_client.get(reverse("admin:feedback_pair_changelist")).content.decode()
    row = text_of(page.split(f'value="{pair.pk}"')[1].split("</tr>")[0])
    assert "strong-v1" in row and "weak-&lt;b&gt;v2&lt;/b&gt;" in row
    assert "completion " not in row


def test_the_pair_list_loads_the_model_names_in_one_query(admin_client, pair, django_assert_max_num_queries):
    for _ in range(5):
        factories.PairFactory()
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse("admin:feedback_pair_changelist")).status_code == 200
