"""codepref's data model: prompts, model versions, completions, pairs, votes, and what is built from them.

Votes are stored in terms of completions (A is ``pair.completion_a``), never of screen sides; the side
each completion was shown on is recorded beside the vote.

One module of ~450 lines on purpose: the models are read together (their relations are the design), and
every capability package imports from here; none of them owns a model alone.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


def content_hash(*parts: str) -> str:
    """sha256 over the parts, each normalised for line endings and trailing whitespace."""
    digest = hashlib.sha256()
    for part in parts:
        normalised = "\n".join(line.rstrip() for line in (part or "").replace("\r\n", "\n").split("\n")).strip()
        digest.update(normalised.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def prompt_hash(language: str, text: str, tests: str, suffix: str = "") -> str:
    """A prompt's identity; a fill-in-the-middle suffix is part of it only when there is one (so left-to-right
    prompts keep the hashes they had)."""
    return content_hash(language, text, tests, *([suffix] if (suffix or "").strip() else []))


def whitespace_normalised(text: str) -> str:
    """The text with all runs of whitespace collapsed: two completions equal under this are not paired."""
    return " ".join((text or "").split())


def _default_votes_wanted() -> int:
    return settings.CODEPREF["VOTES_PER_PAIR"]


def _shuffle_key() -> int:
    return random.randrange(1 << 30)


# Every id is a bigint (BigAutoField): a larger number would be a database error, not an answer.
MAX_ID = 2**63 - 1


class Volunteer(models.Model):
    """The ranking side of a user account: languages known, terms accepted, trust."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="volunteer")
    languages = models.JSONField(default=list, blank=True, help_text="Language codes the volunteer knows.")
    accepted_terms_at = models.DateTimeField(null=True, blank=True)
    accepted_licence = models.CharField(max_length=64, blank=True)
    trust = models.FloatField(default=1.0, help_text="Weight of this volunteer's votes in aggregation.")
    listed_on_leaderboard = models.BooleanField(
        default=True, help_text="Shown by username on the public contributors leaderboard (the volunteer can opt out)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Quality control (feedback/datasets/quality/): computed off the vote path by the recompute task.
    trust_by_language = models.JSONField(
        default=dict, db_default={}, blank=True, help_text="language -> weight (computed)."
    )
    gold_votes = models.PositiveIntegerField(default=0, db_default=0, help_text="Votes on gold pairs (computed).")
    gold_correct = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Of which agreed with the known answer."
    )
    trust_computed_at = models.DateTimeField(null=True, blank=True)
    qc_flagged = models.BooleanField(default=False, db_default=False, help_text="Anomalous voting (see qc_evidence).")
    qc_evidence = models.JSONField(default=dict, db_default={}, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True, help_text="Suspended: votes leave snapshots.")

    def __str__(self) -> str:
        return str(self.user)


class Prompt(models.Model):
    class TestStyle(models.TextChoices):
        NONE = "none", "no tests"
        HUMANEVAL = "humaneval", "HumanEval check(candidate)"
        ASSERTS = "asserts", "assert statements (MBPP)"

    text = models.TextField()
    suffix = models.TextField(
        blank=True, help_text="Fill-in-the-middle: the code after the gap (empty: a left-to-right prompt)."
    )
    language = models.CharField(max_length=32, default="python", db_index=True)
    tests = models.TextField(blank=True)
    test_style = models.CharField(max_length=16, choices=TestStyle.choices, default=TestStyle.NONE)
    entry_point = models.CharField(max_length=200, blank=True)
    reference_solution = models.TextField(blank=True)
    source = models.CharField(
        max_length=64, blank=True, help_text="Where it came from: codepref, humaneval, mbpp, ..."
    )
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    content_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    hidden_at = models.DateTimeField(null=True, blank=True, help_text="Hidden by a moderator: out of assignment.")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.external_id or f"prompt {self.pk}"

    def save(self, *args, **kwargs):
        if not self.content_hash:
            self.content_hash = prompt_hash(self.language, self.text, self.tests, self.suffix)
        super().save(*args, **kwargs)

    @property
    def has_tests(self) -> bool:
        return bool(self.tests.strip()) and self.test_style != self.TestStyle.NONE


class ModelVersion(models.Model):
    """A generator of completions."""

    class Backend(models.TextChoices):
        TRANSFORMERS = "transformers", "transformers (local folder or hub id)"
        OPENAI = "openai", "OpenAI-compatible endpoint"
        IMPORTED = "imported", "imported completions"

    name = models.CharField(max_length=200, unique=True)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    target = models.CharField(max_length=500, blank=True, help_text="Folder, hub id, or the endpoint's model name.")
    base_url = models.CharField(max_length=500, blank=True, help_text="OpenAI-compatible base URL (openai backend).")
    weights = models.CharField(
        max_length=500,
        blank=True,
        help_text="The weights a served (openai) version serves, as a folder or hub id: what a training cycle trains.",
    )
    trust_remote_code = models.BooleanField(
        default=False,
        help_text="Run the checkpoint's own Python code (auto_map, e.g. Replit Code V1) when loading it. "
        "This executes code from the model's repository on the workers: only for repositories you trust.",
    )
    prompt_prefix = models.TextField(blank=True, help_text="Text put before every prompt sent to this model.")
    stop_sequences = models.JSONField(
        default=list, blank=True, help_text="Stop sequences; empty: the prompt language's defaults."
    )
    fim_template = models.CharField(
        max_length=200,
        blank=True,
        help_text="Fill-in-the-middle template with {prefix} and {suffix}, or starcoder / codellama / deepseek-coder; "
        "empty: StarCoder's when a local tokenizer has its FIM tokens.",
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="produced_versions"
    )
    is_active = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class CompletionQuerySet(models.QuerySet):
    def untested(self):
        return self.filter(outcome=Completion.Outcome.NOT_RUN)


class Completion(models.Model):
    class VerdictStrength(models.TextChoices):
        STRONG = "strong", "strong (judged outside the sandbox)"
        WEAK = "weak", "weak (in-process report)"

    class Outcome(models.TextChoices):
        NOT_RUN = "not_run", "not run"
        PASSED = "passed", "passed"
        FAILED = "failed", "failed"
        ERROR = "error", "error"
        TIMEOUT = "timeout", "timeout"

    FAILED_OUTCOMES = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT})  # the tests ran and did not pass

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="completions")
    text = models.TextField()
    text_hash = models.CharField(max_length=64, editable=False)
    params = models.JSONField(default=dict, blank=True, help_text="Generation parameters.")
    request_key = models.CharField(
        max_length=64, null=True, blank=True, unique=True, help_text="Idempotency key of the generation request."
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.NOT_RUN, db_index=True)
    test_duration = models.FloatField(null=True, blank=True)
    test_stdout = models.TextField(blank=True)
    test_stderr = models.TextField(blank=True)
    isolation = models.CharField(max_length=32, blank=True)
    sandbox_version = models.CharField(max_length=32, blank=True)
    # "strong": judged outside the sandbox from the outputs it returned; "weak": the in-process report, which
    # code written against the harness can forge. Only strong verdicts decide pairs (decided_by_tests).
    verdict_strength = models.CharField(max_length=8, choices=VerdictStrength.choices, blank=True)
    test_details = models.JSONField(default=dict, blank=True, help_text="Which sandbox limits held; cgroup events.")
    tested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    hidden_at = models.DateTimeField(null=True, blank=True, help_text="Hidden by a moderator: out of assignment.")

    objects = CompletionQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "model_version", "text_hash"], name="completion_unique_text"),
        ]

    def __str__(self) -> str:
        return f"completion {self.pk} of {self.prompt_id} by {self.model_version_id}"

    def save(self, *args, **kwargs):
        if not self.text_hash:
            self.text_hash = content_hash(self.text)
        super().save(*args, **kwargs)


class PairQuerySet(models.QuerySet):
    def open(self):
        return self.filter(state=Pair.State.OPEN)


class Pair(models.Model):
    """Two completions of one prompt, to be ranked by ``votes_wanted`` volunteers."""

    class State(models.TextChoices):
        OPEN = "open", "open"
        COMPLETE = "complete", "complete"
        RETIRED = "retired", "retired"
        # Known answer (gold_choice): shown to volunteers only as a quality check, labelled by that answer.
        GOLD = "gold", "gold"

    class GoldSource(models.TextChoices):
        NONE = "", "not gold"
        TESTS = "tests", "the unit tests"
        MAINTAINER = "maintainer", "a maintainer"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    language = models.CharField(max_length=32, db_index=True)  # the prompt's, kept here for the pick's index
    completion_a = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="pairs_as_a")
    completion_b = models.ForeignKey(Completion, on_delete=models.CASCADE, related_name="pairs_as_b")
    votes_wanted = models.PositiveSmallIntegerField(default=_default_votes_wanted)
    votes_count = models.PositiveIntegerField(default=0)
    # Of votes_count, the votes quality control does not count (weighed below QC_TRUST_THRESHOLD: a flagged,
    # held or untrusted volunteer's); votes_wanted has been raised by as many, so they do not fill the pair.
    votes_uncounted = models.PositiveIntegerField(default=0, db_default=0)
    # Live assignments plus votes: a pair is handed out only while this is below votes_wanted.
    claims_count = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    shuffle_key = models.IntegerField(default=_shuffle_key)
    decided_by_tests = models.BooleanField(default=False)
    gold_choice = models.CharField(
        max_length=16, blank=True, help_text="Known answer (a/b/tie/both_bad) for gold pairs."
    )
    gold_source = models.CharField(max_length=16, choices=GoldSource.choices, blank=True, default="", db_default="")
    gold_explanation = models.TextField(
        blank=True, default="", db_default="", help_text="Shown to a volunteer after a gold vote."
    )
    last_vote_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PairQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["completion_a", "completion_b"], name="pair_unique_completions"),
            models.CheckConstraint(condition=Q(completion_a__lt=F("completion_b")), name="pair_a_before_b"),
        ]
        indexes = [
            # Serves "open pairs, fewest claims first" without a sort.
            models.Index(fields=["claims_count", "shuffle_key"], condition=Q(state="open"), name="pair_open_pick"),
            models.Index(fields=["claims_count", "shuffle_key"], condition=Q(state="gold"), name="pair_gold_pick"),
        ]

    def __str__(self) -> str:
        return f"pair {self.pk} ({self.completion_a_id} vs {self.completion_b_id})"


class Assignment(models.Model):
    """A pair handed to a volunteer, with the side each completion is shown on."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    volunteer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    left_is_a = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    skipped_at = models.DateTimeField(null=True, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["volunteer", "pair"], name="assignment_unique_volunteer_pair"),
        ]
        indexes = [
            models.Index(
                fields=["volunteer", "created_at"],
                condition=Q(voted_at__isnull=True, skipped_at__isnull=True, released_at__isnull=True),
                name="assignment_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} for {self.volunteer_id}"

    @property
    def is_pending(self) -> bool:
        return self.voted_at is None and self.skipped_at is None and self.released_at is None


class Vote(models.Model):
    class Choice(models.TextChoices):
        A = "a", "A better"
        B = "b", "B better"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="votes")
    volunteer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    choice = models.CharField(max_length=16, choices=Choice.choices)
    left_is_a = models.BooleanField(help_text="Whether completion A was shown on the left.")
    idempotency_key = models.CharField(max_length=64)
    rationale = models.CharField(max_length=280, blank=True)
    time_taken_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set off the vote path by quality control; NULL (not assessed yet) counts at the volunteer's trust.
    qc_weight = models.FloatField(null=True, blank=True, help_text="Weight in aggregation (computed).")
    qc_flags = models.CharField(
        max_length=200, blank=True, default="", db_default="", help_text="Anomaly flags (computed)."
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["volunteer", "pair"], name="vote_one_per_volunteer_pair"),
            models.UniqueConstraint(fields=["volunteer", "idempotency_key"], name="vote_unique_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.volunteer_id} on {self.pair_id}: {self.choice}"

    @property
    def screen_choice(self) -> str:
        """The choice as the volunteer saw it: left / right / tie / both_bad."""
        if self.choice == self.Choice.A:
            return "left" if self.left_is_a else "right"
        if self.choice == self.Choice.B:
            return "right" if self.left_is_a else "left"
        return self.choice


class Flag(models.Model):
    """A volunteer's report on a pair, prompt or completion."""

    class Reason(models.TextChoices):
        BROKEN = "broken", "broken"
        HARMFUL = "harmful", "harmful"
        PERSONAL_DATA = "personal_data", "contains personal data"
        WRONG_LANGUAGE = "wrong_language", "wrong language"
        DUPLICATE = "duplicate", "duplicate"
        OTHER = "other", "other (say what in the note)"

    class State(models.TextChoices):
        OPEN = "open", "open"
        UPHELD = "upheld", "upheld (excluded from datasets)"
        DISMISSED = "dismissed", "dismissed"

    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flags")
    pair = models.ForeignKey(Pair, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    prompt = models.ForeignKey(Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    completion = models.ForeignKey(Completion, null=True, blank=True, on_delete=models.CASCADE, related_name="flags")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["reporter", "pair", "reason"], name="flag_once_per_reporter_pair_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} on {self.pair_id or self.completion_id or self.prompt_id}"


class DatasetSnapshot(models.Model):
    """A versioned, immutable preference dataset written under ``DATASETS_DIR/<version>/``."""

    class State(models.TextChoices):
        BUILDING = "building", "building"
        PUBLISHED = "published", "published"
        FAILED = "failed", "failed"

    version = models.PositiveIntegerField(unique=True)
    slot = models.CharField(
        max_length=100, null=True, blank=True, unique=True, help_text="Schedule slot that asked for it (dedupe)."
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.BUILDING)
    filters = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=dict, blank=True, help_text="name -> {bytes, sha256}")
    agreement_alpha = models.FloatField(null=True, blank=True)
    last_vote_id = models.BigIntegerField(default=0, help_text="Highest vote id included.")
    progress = models.FloatField(default=0.0)
    task_id = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"snapshot v{self.version}"

    @property
    def path(self) -> Path:
        return Path(settings.CODEPREF["DATASETS_DIR"]) / str(self.version)


class TrainingRun(models.Model):
    """One training cycle (stage ``cycle``) or one of its stages."""

    class Stage(models.TextChoices):
        CYCLE = "cycle", "cycle"
        SFT = "sft", "SFT"
        REWARD = "reward", "reward model"
        DPO = "dpo", "DPO"
        ONLINE_RL = "online_rl", "online RL"
        EVALUATE = "evaluate", "evaluate"

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        SKIPPED = "skipped", "skipped"
        CANCELLED = "cancelled", "cancelled"

    cycle = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="stages")
    stage = models.CharField(max_length=16, choices=Stage.choices)
    snapshot = models.ForeignKey(DatasetSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recipe = models.CharField(max_length=64, blank=True)
    config = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True)
    artefact_dir = models.CharField(max_length=500, blank=True)
    base_model = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs_from"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs_to"
    )
    pid = models.IntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # The process watching the pipeline (a worker or `manage.py train`) bumps these; a stale heartbeat
    # means nobody is watching, so a re-delivered task may take the cycle over (feedback/cycles/runs.py).
    host = models.CharField(max_length=255, blank=True, help_text="Host of the pipeline process (pid).")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # A second cycle while one runs is refused by the database, not only by the task.
            models.UniqueConstraint(
                fields=["stage"],
                condition=Q(stage="cycle", state__in=["queued", "running"]),
                name="training_one_active_cycle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage} run {self.pk} ({self.state})"


class ApiTokenName(models.Model):
    """A name for a knox API token (knox's AuthToken has none): "laptop", "CI export job".

    Revoking a token deletes the AuthToken; its name goes with it.
    """

    token = models.OneToOneField(settings.KNOX_TOKEN_MODEL, on_delete=models.CASCADE, related_name="name_record")
    name = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class Leaderboard(models.Model):
    """The leaderboards as last computed off the request path (feedback.leaderboards): one row per ``key``.

    The refresh task replaces the row; pages and the API only read it, so no request refits a model.
    """

    key = models.CharField(max_length=32, unique=True)
    computed_at = models.DateTimeField()
    body = models.JSONField(default=dict, help_text="Ratings, intervals, win rates, pass@1 and contributors.")
    plot_png = models.BinaryField(blank=True, default=b"")

    def __str__(self) -> str:
        return f"leaderboard {self.key} at {self.computed_at:%Y-%m-%d %H:%M}"
