"""Completion.verdict_strength (strong: judged outside the sandbox; weak: the in-process report) and
Completion.test_details (which sandbox limits held). Existing verdicts keep "" (unknown) and decide nothing
until ``manage.py run_tests`` re-runs them (the sandbox version changed)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0004_default_beat_schedules"),
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
    ]
