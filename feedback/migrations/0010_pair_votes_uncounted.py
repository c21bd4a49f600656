"""Pair.votes_uncounted: votes quality control weighs below the trust threshold, replaced by more votes.

The quality-control schedule goes from every hour to every 10 minutes (renamed every-10min-quality-control):
a flagged or untrusted volunteer is now held to gold pairs from the next recompute on, so the recompute's
period is how long a bot's votes can use up real pairs. A schedule a maintainer changed is left as it is.
"""

from django.db import migrations, models

OLD, NEW = "every-1h-quality-control", "every-10min-quality-control"


def _reschedule(apps, name: str, to_name: str, to: tuple[int, str], only_from: tuple[int, str] | None = None) -> None:
    """Rename the schedule ``name`` to ``to_name`` and run it every ``to`` (every, period); with ``only_from``,
    only if it still runs at that interval (a schedule a maintainer changed is left alone)."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    tasks = PeriodicTask.objects.filter(name=name)
    if only_from is not None:
        tasks = tasks.filter(interval__every=only_from[0], interval__period=only_from[1])
    task = tasks.first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=to[0], period=to[1])
    task.name = to_name
    task.save(update_fields=["interval", "name"])


def schedule_shorten(apps, schema_editor):
    _reschedule(apps, OLD, NEW, (10, "minutes"), only_from=(1, "hours"))


def schedule_lengthen(apps, schema_editor):
    _reschedule(apps, NEW, OLD, (1, "hours"))


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
