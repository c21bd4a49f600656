from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "codepref"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .accounts import signals  # noqa: F401
