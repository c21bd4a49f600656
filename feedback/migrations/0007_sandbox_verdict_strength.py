"""Completion.verdict_strength (strong: judged outside the sandbox; weak: the in-process report) and
Completion.test_details (which sandbox limits held). Existing verdicts keep "" (unknown): a program could
have forged them from inside the harness, so the pairs they decided are undecided until ``manage.py run_tests
--untested`` re-runs them (the sandbox version changed) and strong verdicts decide them again."""

from django.db import migrations, models


def forget_unproven_decisions(apps, schema_editor):
    """Pairs decided by verdicts of unknown strength (all, at this migration) decide nothing for now."""
    apps.get_model("feedback", "Pair").objects.filter(decided_by_tests=True).update(decided_by_tests=False)


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0006_seed_models"),
    ]

    operations = [
        migrations.AddField(
            model_name="completion",
            name="test_details",
            field=models.JSONField(blank=True, default=dict, help_text="Which sandbox limits held; cgroup events."),
        ),
        migrations.AddField(
            model_name="completion",
            name="verdict_strength",
            field=models.CharField(
                blank=True,
                choices=[("strong", "strong (judged outside the sandbox)"), ("weak", "weak (in-process report)")],
                max_length=8,
            ),
        ),
        migrations.RunPython(forget_unproven_decisions, migrations.RunPython.noop),
    ]
