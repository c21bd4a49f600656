"""Pair.votes_uncounted: votes quality control weighs below the trust threshold, replaced by more votes.

The quality-control schedule goes from every hour to every 10 minutes (renamed every-10min-quality-control):
a flagged or untrusted volunteer is now held to gold pairs from the next recompute on, so the recompute's
period is how long a bot's votes can use up real pairs. A schedule a maintainer changed is left as it is.
"""

from django.db import migrations, models

OLD, NEW = "every-1h-quality-control", "every-10min-quality-control"


def schedule_shorten(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    task = PeriodicTask.objects.filter(name=OLD, interval__every=1, interval__period="hours").first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    task.name = NEW
    task.save(update_fields=["interval", "name"])


def schedule_lengthen(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    task = PeriodicTask.objects.filter(name=NEW).first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    task.name = OLD
    task.save(update_fields=["interval", "name"])


class Migration(migrations.Migration):
    dependencies = [("feedback", "0009_qc_gold_trust_moderation")]

    operations = [
        migrations.AddField(
            model_name="pair",
            name="votes_uncounted",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(schedule_shorten, schedule_lengthen),
    ]
