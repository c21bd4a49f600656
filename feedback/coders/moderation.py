"""Moderators hiding a prompt or a completion: it leaves assignment and exports (its pairs are retired, so no
volunteer is handed them and no snapshot reads them); nothing is deleted. Showing it again brings back the pairs
it retired whose prompt and completions are all visible. Each action is logged (``feedback.audit``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from feedback.audit import audit_log
from feedback.errors import ServiceError
from feedback.models import Completion, Pair, Prompt


def _pairs_of(obj) -> Q:
    if isinstance(obj, Prompt):
        return Q(prompt=obj)
    return Q(completion_a=obj) | Q(completion_b=obj)


@transaction.atomic
def content_hide(*, obj: Prompt | Completion, by, reason: str = "", hide: bool = True) -> int:
    """Hide (or show again) a prompt or a completion; returns how many pairs were retired (or restored)."""
    if not isinstance(obj, (Prompt, Completion)):
        raise ServiceError("only a prompt or a completion can be hidden")
    if by is None or not by.is_staff:
        raise ServiceError("only staff can hide prompts and completions")
    obj = type(obj).objects.select_for_update().get(pk=obj.pk)
    if (obj.hidden_at is not None) == hide:
        return 0
    obj.hidden_at = timezone.now() if hide else None
    obj.save(update_fields=["hidden_at"])
    if hide:
        moved = Pair.objects.filter(_pairs_of(obj)).exclude(state=Pair.State.RETIRED).update(state=Pair.State.RETIRED)
    else:
        moved = _pairs_restore(obj)
    kind = "prompt" if isinstance(obj, Prompt) else "completion"
    action = f"hid the {kind} ({moved} pairs retired)" if hide else f"showed the {kind} again ({moved} pairs back)"
    audit_log(by=by, obj=obj, action=action, reason=" ".join((reason or "").split())[:500])
    return moved


def _pairs_restore(obj) -> int:
    hidden = (
        Q(prompt__hidden_at__isnull=False)
        | Q(completion_a__hidden_at__isnull=False)
        | Q(completion_b__hidden_at__isnull=False)
    )
    pairs = Pair.objects.filter(_pairs_of(obj), state=Pair.State.RETIRED).exclude(hidden)
    restored = 0
    for pair in pairs.only("id", "gold_choice", "votes_count", "votes_wanted"):
        if pair.gold_choice:
            state = Pair.State.GOLD
        else:
            state = Pair.State.COMPLETE if pair.votes_count >= pair.votes_wanted else Pair.State.OPEN
        restored += Pair.objects.filter(pk=pair.pk).update(state=state)
    return restored
