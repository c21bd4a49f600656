"""The WSGI app that bench/vote_path.py serves: ``feedback.wsgi`` with the vote path's switches set from
the environment, so that one benchmark run can compare them (``--configs "gthread:2x8,orm ..."``).

    BENCH_VOTE_SQL=0       the ORM path instead of the single statements on PostgreSQL
    BENCH_PREPARE=0        those statements not prepared
    BENCH_TOKEN_CACHE=0    knox token lookups not cached
    BENCH_ASYNC_CLAIM=0    claims committed synchronously
    BENCH_SPREAD_PICK=0    every claim starts at the first of the least-claimed pairs
"""

import os

from feedback.wsgi import application


def _switches() -> None:
    from django.conf import settings

    from feedback import selectors

    selectors.FAST_SQL = os.environ.get("BENCH_VOTE_SQL", "1") == "1"
    selectors.PREPARE = os.environ.get("BENCH_PREPARE", "1") == "1"
    selectors.ASYNC_CLAIM = os.environ.get("BENCH_ASYNC_CLAIM", "1") == "1"
    selectors.SPREAD_PICK = os.environ.get("BENCH_SPREAD_PICK", "1") == "1"
    if os.environ.get("BENCH_TOKEN_CACHE", "1") != "1":
        settings.API_TOKEN_CACHE_SECONDS = 0


_switches()
__all__ = ["application"]
