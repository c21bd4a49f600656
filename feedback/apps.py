from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "codepref"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import metrics, request_id  # noqa: F401 (connect their Celery signal handlers)
        from .accounts import signals  # noqa: F401
