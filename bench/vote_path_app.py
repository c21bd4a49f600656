"""The WSGI app that bench/vote_path.py serves: ``feedback.wsgi`` with the vote path's switches set from
the environment, so that one benchmark run can compare them (``--configs "gthread:2x8,orm ..."``).

    BENCH_VOTE_SQL=0       the ORM path instead of the single statements on PostgreSQL
    BENCH_PREPARE=0        those statements not prepared
    BENCH_TOKEN_CACHE=0    knox token lookups not cached
    BENCH_ASYNC_CLAIM=0    claims committed synchronously
    BENCH_SPREAD_PICK=0    every claim starts at the first of the least-claimed pairs
    BENCH_SOCKET_CHECK=0   Django's ``SELECT 1`` connection health check instead of the socket check
    BENCH_GC_FREEZE=0      start-up objects left in the garbage collector's reach (``gc.unfreeze``)
    BENCH_GC_LOG=1         each worker prints its garbage collections' times as it exits
    BENCH_REQUEST_METRICS=0  without django-prometheus's request middleware (codepref's counters stay)
"""

import os

from feedback.wsgi import application


def _switches() -> None:
    from django.conf import settings

    from feedback.ranking import claims, statements

    statements.FAST_SQL = os.environ.get("BENCH_VOTE_SQL", "1") == "1"
    statements.PREPARE = os.environ.get("BENCH_PREPARE", "1") == "1"
    claims.ASYNC_CLAIM = os.environ.get("BENCH_ASYNC_CLAIM", "1") == "1"
    claims.SPREAD_PICK = os.environ.get("BENCH_SPREAD_PICK", "1") == "1"
    if os.environ.get("BENCH_SOCKET_CHECK", "1") != "1":
        from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

        from feedback.postgresql.base import DatabaseWrapper

        DatabaseWrapper.is_usable = DjangoWrapper.is_usable
    if os.environ.get("BENCH_GC_FREEZE", "1") != "1":
        import gc

        gc.unfreeze()
    if os.environ.get("BENCH_TOKEN_CACHE", "1") != "1":
        settings.API_TOKEN_CACHE_SECONDS = 0
    if os.environ.get("BENCH_REQUEST_METRICS", "1") != "1":
        settings.MIDDLEWARE = [name for name in settings.MIDDLEWARE if not name.startswith("django_prometheus.")]
        application.load_middleware()


_switches()
__all__ = ["application"]


def _log_collections() -> None:
    """BENCH_GC_LOG=1: each worker prints, as it exits, its garbage collections by generation (count, longest
    and total wall time, and the CPU time they took) to stderr."""
    import atexit
    import gc
    import sys
    import time

    started: dict[str, float] = {}
    seen: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}

    def timing(phase: str, info: dict) -> None:
        if phase == "start":
            started["wall"], started["cpu"] = time.perf_counter(), time.thread_time()
        elif started:
            seen[info["generation"]].append(
                (time.perf_counter() - started["wall"], time.thread_time() - started["cpu"])
            )

    def report() -> None:
        for generation, times in seen.items():
            if times:
                wall, cpu = zip(*times, strict=True)
                print(
                    f"gc pid {os.getpid()} gen{generation}: {len(times)} collections; wall max "
                    f"{1000 * max(wall):.1f} ms, total {1000 * sum(wall):.0f} ms; CPU max {1000 * max(cpu):.1f} ms, "
                    f"total {1000 * sum(cpu):.0f} ms",
                    file=sys.stderr,
                    flush=True,
                )

    gc.callbacks.append(timing)
    atexit.register(report)


if os.environ.get("BENCH_GC_LOG") == "1":
    _log_collections()
