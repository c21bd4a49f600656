"""A stand-in for a Celery task reached through ``feedback.dispatch``: records what it is sent, or fails."""

from __future__ import annotations

from feedback import dispatch


class RecordingTask:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.names: list[str] = []
        self.sent: list[dict] = []

    def apply_async(self, *, kwargs, task_id=None):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append(kwargs)

    def install(self, monkeypatch) -> RecordingTask:
        """Every task sent by name now comes here; the names are recorded too."""
        monkeypatch.setattr(dispatch, "task", lambda name: self.names.append(name) or self)
        return self
