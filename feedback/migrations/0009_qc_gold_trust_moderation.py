"""Quality control (issue 12): gold pairs, computed trust and vote weights, anomaly flags, moderation.

Also the default schedule every-1h-quality-control: feedback.tasks.recompute_quality (trust, flags, vote
weights, adaptive k), editable in the admin afterwards (left as it is when present, matched by name).
"""

from django.db import migrations, models

QUALITY_SCHEDULE = "every-1h-quality-control"


def schedule_create(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    if PeriodicTask.objects.filter(name=QUALITY_SCHEDULE).exists():
        return
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.create(
        name=QUALITY_SCHEDULE, task="feedback.tasks.recompute_quality", kwargs="{}", enabled=True, interval=every
    )


def schedule_remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=QUALITY_SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0008_volunteer_report_reasons"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="completion",
            name="hidden_at",
            field=models.DateTimeField(blank=True, help_text="Hidden by a moderator: out of assignment.", null=True),
        ),
        migrations.AddField(
            model_name="pair",
            name="gold_explanation",
            field=models.TextField(
                blank=True, db_default="", default="", help_text="Shown to a volunteer after a gold vote."
            ),
        ),
        migrations.AddField(
            model_name="pair",
            name="gold_source",
            field=models.CharField(
                blank=True,
                choices=[("", "not gold"), ("tests", "the unit tests"), ("maintainer", "a maintainer")],
                db_default="",
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="prompt",
            name="hidden_at",
            field=models.DateTimeField(blank=True, help_text="Hidden by a moderator: out of assignment.", null=True),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="gold_correct",
            field=models.PositiveIntegerField(
                db_default=0, default=0, help_text="Of which agreed with the known answer."
            ),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="gold_votes",
            field=models.PositiveIntegerField(db_default=0, default=0, help_text="Votes on gold pairs (computed)."),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="qc_evidence",
            field=models.JSONField(blank=True, db_default={}, default=dict),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="qc_flagged",
            field=models.BooleanField(
                db_default=False, default=False, help_text="Anomalous voting (see qc_evidence)."
            ),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="suspended_at",
            field=models.DateTimeField(blank=True, help_text="Suspended: votes leave snapshots.", null=True),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="trust_by_language",
            field=models.JSONField(
                blank=True, db_default={}, default=dict, help_text="language -> weight (computed)."
            ),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="trust_computed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="vote",
            name="qc_flags",
            field=models.CharField(
                blank=True, db_default="", default="", help_text="Anomaly flags (computed).", max_length=200
            ),
        ),
        migrations.AddField(
            model_name="vote",
            name="qc_weight",
            field=models.FloatField(blank=True, help_text="Weight in aggregation (computed).", null=True),
        ),
        migrations.AlterField(
            model_name="pair",
            name="state",
            field=models.CharField(
                choices=[("open", "open"), ("complete", "complete"), ("retired", "retired"), ("gold", "gold")],
                default="open",
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="pair",
            index=models.Index(
                condition=models.Q(("state", "gold")), fields=["claims_count", "shuffle_key"], name="pair_gold_pick"
            ),
        ),
        migrations.RunPython(schedule_create, schedule_remove),
    ]
