"""Celery queue depths, read from the broker's Redis lists; a broker that is down or not Redis is said, not raised."""

from __future__ import annotations

from django.conf import settings

# kombu's Redis transport keeps a queue's messages of priority p > 0 in a list "<queue>\x06\x16<p>".
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
TIMEOUT_S = 0.5


def queue_names() -> list[str]:
    return list(getattr(settings, "CELERY_TASK_QUEUES", {}) or ["default"])


def queue_depths(broker_url: str | None = None) -> dict:
    """``{"state": "ok", "depths": {queue: messages}}``, or ``{"state": "inline" | "unreachable" | "unsupported",
    "detail": ...}`` when there is no Redis list to read."""
    url = broker_url if broker_url is not None else settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER and broker_url is None:
        return {"state": "inline", "detail": "tasks run inline (no broker): nothing waits in a queue"}
    if not url.startswith(("redis://", "rediss://")):
        return {
            "state": "unsupported",
            "detail": f"queue depths are read from Redis; the broker is {url.split(':')[0]}",
        }
    import redis

    client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
    try:
        with client.pipeline(transaction=False) as pipe:
            for name in queue_names():
                for step in PRIORITY_STEPS:
                    pipe.llen(name if step == 0 else f"{name}{PRIORITY_SEPARATOR}{step}")
            lengths = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        return {"state": "unreachable", "detail": f"the broker did not answer: {type(exc).__name__}"}
    finally:
        client.close()
    width = len(PRIORITY_STEPS)
    return {
        "state": "ok",
        "depths": {name: sum(lengths[i * width : (i + 1) * width]) for i, name in enumerate(queue_names())},
    }
