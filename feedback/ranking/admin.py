"""Admin for ranking: pairs, assignments, votes, and the reports queue.

Votes and assignments are records of what volunteers did and are read-only here; changing them by hand
would break the pairs' counts.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Case, Value, When
from django.utils.html import format_html

from feedback.admin_display import TextMedia, code, link
from feedback.models import Assignment, Flag, Pair, Vote

from .highlight import highlight_code
from .review import pair_sides, pair_votes
from .services import flag_resolve, pair_gold_author


class PairReviewMedia:
    # The code panes' colours and layout as volunteers see them, and the side-by-side grid.
    css = {"all": ["feedback/admin_ranking.css", "feedback/pygments.css", "feedback/admin_pair_review.css"]}


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    Media = PairReviewMedia
    list_display = (
        "id",
        "prompt",
        "model_a",
        "model_b",
        "votes_count",
        "votes_wanted",
        "claims_count",
        "state",
        "decided_by_tests",
        "gold_choice",
        "gold_source",
        "last_vote_at",
    )
    list_filter = ("state", "decided_by_tests", "gold_source", "language", ("gold_choice", admin.EmptyFieldListFilter))
    search_fields = ("prompt__text", "prompt__external_id")
    list_select_related = ("prompt", "completion_a__model_version", "completion_b__model_version")
    raw_id_fields = ("prompt", "completion_a", "completion_b")
    readonly_fields = (
        "prompt_link",
        "prompt_text",
        "language",
        "sides",
        "votes_cast",
        "votes_count",
        "claims_count",
        "last_vote_at",
        "created_at",
        "gold_source",
        "decided_by_tests",
    )
    fields = ("prompt_link", "prompt_text", "language", "sides", "votes_cast", "votes_wanted", "state")
    fields += ("gold_choice", "gold_explanation", "gold_source", "decided_by_tests", "votes_count", "claims_count")
    fields += ("last_vote_at", "created_at")
    actions = ("retire",)

    def has_add_permission(self, request):
        return False  # pairs are formed by import and generation, which keep A before B and the cap

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "gold_choice" in form.base_fields:  # a maintainer authors a gold pair: its known answer and why
            form.base_fields["gold_choice"] = forms.ChoiceField(
                choices=[("", "not gold"), *Vote.Choice.choices], required=False,
                help_text="Known answer, in terms of completions A and B: the pair becomes gold.",
            )  # fmt: skip
        return form

    def save_model(self, request, obj, form, change):
        gold_changed = {"gold_choice", "gold_explanation"} & set(form.changed_data)
        super().save_model(request, obj, form, change)
        if gold_changed:
            pair_gold_author(pair_id=obj.pk, choice=obj.gold_choice, explanation=obj.gold_explanation, by=request.user)

    @admin.display(description="prompt")
    def prompt_link(self, obj):
        return link(obj.prompt)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # One query for both sides and their models (the review shows each model's name).
            obj = (
                Pair.objects.select_related("prompt", "completion_a__model_version", "completion_b__model_version")
                .filter(pk=obj.pk)
                .first()
            )
        return obj

    @admin.display(description="model A", ordering="completion_a__model_version__name")
    def model_a(self, obj):
        return obj.completion_a.model_version.name

    @admin.display(description="model B", ordering="completion_b__model_version__name")
    def model_b(self, obj):
        return obj.completion_b.model_version.name

    @admin.display(description="prompt text")
    def prompt_text(self, obj):
        return format_html('<div class="pair-review-prompt">{}</div>', highlight_code(obj.prompt.text, obj.language))

    @admin.display(description="completions")
    def sides(self, obj):
        return pair_sides(obj)

    @admin.display(description="votes")
    def votes_cast(self, obj):
        return pair_votes(obj)

    @admin.action(description="Retire selected pairs (no more votes)")
    def retire(self, request, queryset):
        count = queryset.exclude(state=Pair.State.RETIRED).update(state=Pair.State.RETIRED)
        self.message_user(request, f"{count} pair(s) retired.", messages.SUCCESS)


class AssignmentStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "pending"), ("voted", "voted"), ("skipped", "skipped"), ("released", "released")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(voted_at__isnull=True, skipped_at__isnull=True, released_at__isnull=True)
        if self.value() in ("voted", "skipped", "released"):
            return queryset.filter(**{f"{self.value()}_at__isnull": False})
        return queryset


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "volunteer", "left_is_a", "state", "created_at", "expires_at")
    list_filter = (AssignmentStateFilter, "left_is_a")
    search_fields = ("volunteer__username", "pair__prompt__external_id")
    list_select_related = ("volunteer",)
    readonly_fields = ("pair", "volunteer", "left_is_a", "created_at", "expires_at", "voted_at", "skipped_at")
    readonly_fields += ("released_at",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    @admin.display(description="state")
    def state(self, obj):
        for name in ("voted", "skipped", "released"):
            if getattr(obj, f"{name}_at") is not None:
                return name
        return "pending"


# --- votes ------------------------------------------------------------------------------------


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "volunteer", "choice", "screen_choice", "time_taken_ms", "rationale", "created_at")
    list_filter = ("choice", "created_at", "left_is_a")
    search_fields = ("volunteer__username", "rationale", "pair__prompt__external_id")
    list_select_related = ("volunteer",)
    date_hierarchy = "created_at"
    readonly_fields = ("pair", "volunteer", "choice", "left_is_a", "screen_choice", "idempotency_key", "rationale")
    readonly_fields += ("time_taken_ms", "created_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a deleted vote would leave its pair's count wrong; uphold a report instead

    @admin.display(description="as seen")
    def screen_choice(self, obj):
        return obj.screen_choice


# --- reports ----------------------------------------------------------------------------------


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    """The reports queue: open reports first, resolved with the "uphold" and "dismiss" actions."""

    Media = TextMedia

    list_display = ("id", "reason", "state", "reporter", "subject", "note", "created_at", "resolved_by", "resolved_at")
    list_filter = ("state", "reason", "created_at")
    search_fields = ("note", "reporter__username", "prompt__external_id", "prompt__text")
    list_select_related = ("reporter", "resolved_by")
    readonly_fields = ("reporter", "subject", "pair_texts", "reason", "note", "created_at", "resolved_by")
    readonly_fields += ("resolved_at",)
    fields = ("reason", "reporter", "subject", "pair_texts", "note", "state", "resolved_by", "resolved_at")
    fields += ("created_at",)
    actions = ("uphold", "dismiss")

    def has_add_permission(self, request):
        return False

    def get_ordering(self, request):
        open_first = Case(When(state=Flag.State.OPEN, then=Value(0)), default=Value(1)).asc()
        return (open_first, "-created_at")

    @admin.display(description="about")
    def subject(self, obj):
        if obj.pair_id:
            return link(obj.pair)
        if obj.completion_id:
            return link(obj.completion)
        return link(obj.prompt)

    @admin.display(description="what was reported")
    def pair_texts(self, obj):
        if obj.pair_id:
            pair = obj.pair
            a, b = pair.completion_a, pair.completion_b
            return format_html("{}<p>A</p>{}<p>B</p>{}", code(pair.prompt.text), code(a.text), code(b.text))
        if obj.completion_id:
            return code(obj.completion.text)
        return code(obj.prompt.text) if obj.prompt_id else "-"

    def save_model(self, request, obj, form, change):
        # Only the state is editable; the moderation service records who resolved it and when.
        if "state" in form.changed_data:
            flag_resolve(flag_ids=[obj.pk], state=obj.state, by=request.user)

    def _resolve(self, request, queryset, state: str, verb: str) -> None:
        count = flag_resolve(flag_ids=queryset.values_list("pk", flat=True), state=state, by=request.user)
        self.message_user(request, f"{count} report(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Uphold selected reports (exclude from datasets)")
    def uphold(self, request, queryset):
        self._resolve(request, queryset, Flag.State.UPHELD, "upheld")

    @admin.action(description="Dismiss selected reports")
    def dismiss(self, request, queryset):
        self._resolve(request, queryset, Flag.State.DISMISSED, "dismissed")
