"""The default schedules (django-celery-beat, editable in the admin afterwards).

- every-1h-build-snapshot: feedback.tasks.build_snapshot(slot="hourly"); the slot makes two beats build once.
- nightly-train-cycle: feedback.tasks.train_cycle at 03:00 UTC.
- every-5m-release-assignments: feedback.tasks.release_expired_assignments.

Re-running the migration, or schedules edited in the admin, are left as they are (matched by name).
"""

import json

from django.db import migrations

SCHEDULES = [
    ("every-1h-build-snapshot", "feedback.tasks.build_snapshot", {"slot": "hourly"}, ("interval", 1, "hours"), ""),
    ("nightly-train-cycle", "feedback.tasks.train_cycle", {}, ("crontab", "0", "3"), "training"),
    ("every-5m-release-assignments", "feedback.tasks.release_expired_assignments", {}, ("interval", 5, "minutes"), ""),
]


def create(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    for name, task, kwargs, schedule, queue in SCHEDULES:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        fields = {"name": name, "task": task, "kwargs": json.dumps(kwargs), "enabled": True}
        if queue:
            fields["queue"] = queue
        if schedule[0] == "interval":
            fields["interval"], _ = IntervalSchedule.objects.get_or_create(every=schedule[1], period=schedule[2])
        else:
            fields["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=schedule[1], hour=schedule[2], day_of_week="*", day_of_month="*", month_of_year="*",
                timezone="UTC",
            )
        PeriodicTask.objects.create(**fields)


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_api_token_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
