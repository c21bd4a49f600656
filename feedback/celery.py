"""The Celery app. Settings are read from Django's (``CELERY_*``); see feedback/settings.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")

app = Celery("feedback")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each capability package keeps its tasks in its own tasks.py. Their names stay "feedback.tasks.<name>"
# (beat schedules and routes stored in the database refer to them by name).
TASK_PACKAGES = [
    "feedback.ranking",
    "feedback.coders",
    "feedback.datasets",
    "feedback.cycles",
    "feedback.leaderboards",
]
app.autodiscover_tasks(TASK_PACKAGES, related_name="tasks")
