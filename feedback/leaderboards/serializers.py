"""The leaderboard API's bodies, as the OpenAPI schema documents them (the view sends the stored dict)."""

from __future__ import annotations

from rest_framework import serializers


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (DRF's BooleanField also takes "yes", "0", 1, ...)."""

    default_error_messages = {
        "invalid": "must be true or false (a JSON boolean)",
        "required": "is required",
        "null": "is required",
    }

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


MODELS_HELP = (
    "Model versions, best first. Ratings are Bradley-Terry strengths fitted (choix) to human votes on pairs of "
    "completions from two different model versions: a vote for one side is a win, a tie is half a win for each, "
    "and both-bad votes are left out (they say nothing about which is better). Only votes that pass quality "
    "control count. Model versions with test verdicts but no such votes follow, unrated."
)
INTERVAL_HELP = (
    "Simultaneous 95% intervals: together they hold every rated model's rating at once (bootstrap max-t band: "
    "rating +- c * the bootstrap sd, c the 95th percentile over resamples of the largest deviation in sds), so "
    "they are wider than per-model 95% intervals."
)


class ModelRowSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The model version's name.")
    model_id = serializers.IntegerField()
    rank = serializers.IntegerField(
        allow_null=True,
        help_text="1 + how many models are better beyond doubt (simultaneous 95% intervals apart: their lower "
        "bound above this model's upper bound).",
    )
    rating = serializers.FloatField(allow_null=True, help_text="1000 + 400 * strength / ln 10 (Elo-like scale).")
    ci_low = serializers.FloatField(
        allow_null=True, help_text="Lower end of the rating's simultaneous 95% interval. " + INTERVAL_HELP
    )
    ci_high = serializers.FloatField(
        allow_null=True, help_text="Upper end of the rating's simultaneous 95% interval. " + INTERVAL_HELP
    )
    strength = serializers.FloatField(allow_null=True, help_text="Bradley-Terry log-strength, centred on 0.")
    comparisons = serializers.IntegerField(help_text="Counted votes against other model versions.")
    wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True, help_text="(wins + ties / 2) / comparisons.")
    pass_at_1 = serializers.FloatField(
        allow_null=True,
        help_text="Mean over the prompts with tests of the share of this model's completions that passed; "
        "null when none of its completions' tests were run.",
    )
    prompts_tested = serializers.IntegerField(help_text="Prompts the pass@1 is averaged over.")


class WinRateSerializer(serializers.Serializer):
    model = serializers.CharField()
    opponent = serializers.CharField()
    wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.FloatField(help_text="(wins + ties / 2) / (wins + ties + losses) against this opponent.")


class ContributorSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    username = serializers.CharField()
    votes = serializers.IntegerField(help_text="Votes that passed quality control.")


class ContributorsSerializer(serializers.Serializer):
    week = ContributorSerializer(many=True, help_text="The last 7 days.")
    all_time = ContributorSerializer(many=True)


class LeaderboardSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the stored leaderboard was computed (null: not yet)."
    )
    models = ModelRowSerializer(many=True, help_text=MODELS_HELP)
    win_rates = WinRateSerializer(many=True, help_text="Head to head, for every two rated models that met.")
    comparisons = serializers.IntegerField(help_text="Votes the ratings were fitted to.")
    left_out_both_bad = serializers.IntegerField(help_text="Both-bad votes between two models, left out of the fit.")
    left_out_same_model = serializers.IntegerField(help_text="Votes on pairs of one model's own completions.")
    bootstrap_rounds = serializers.IntegerField(help_text="Resamples of the votes behind the 95% intervals.")
    seed = serializers.IntegerField(allow_null=True, help_text="The bootstrap's random seed.")
    interval = serializers.CharField(
        allow_null=True,
        help_text='What ci_low and ci_high are: today always "simultaneous 95% (bootstrap max-t)". Null before '
        "the first refresh, and on a board stored before intervals were simultaneous (per-model 95% percentile "
        "intervals then); the next refresh (every 10 minutes) replaces it.",
    )
    contributors = ContributorsSerializer(
        help_text="Volunteers by counted votes; those who opted out (PATCH /api/v1/leaderboard/me/) are not listed."
    )


class ListingSerializer(serializers.Serializer):
    listed = StrictBooleanField(help_text="Whether you are shown by username on the contributors leaderboard.")


class RefreshSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
