"""Leaderboards: the table the refresh task writes, the volunteer's opt-out, and the refresh's beat schedule.

- every-10m-refresh-leaderboard: feedback.tasks.leaderboard_refresh (editable in the admin afterwards; matched
  by name, so a re-run or an edited schedule is left as it is).
"""

from django.db import migrations, models

SCHEDULE_NAME = "every-10m-refresh-leaderboard"


def create_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    if PeriodicTask.objects.filter(name=SCHEDULE_NAME).exists():
        return
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.create(
        name=SCHEDULE_NAME, task="feedback.tasks.leaderboard_refresh", kwargs="{}", interval=interval, enabled=True
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0004_default_beat_schedules"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="Leaderboard",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=32, unique=True)),
                ("computed_at", models.DateTimeField()),
                (
                    "body",
                    models.JSONField(
                        default=dict, help_text="Ratings, intervals, win rates, pass@1 and contributors."
                    ),
                ),
                ("plot_png", models.BinaryField(blank=True, default=b"")),
            ],
        ),
        migrations.AddField(
            model_name="volunteer",
            name="listed_on_leaderboard",
            field=models.BooleanField(
                default=True,
                help_text="Shown by username on the public contributors leaderboard (the volunteer can opt out).",
            ),
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
