"""Leaderboards: model versions ranked by human votes (Bradley-Terry) beside their pass@1, and contributors.

Computed off the request path by ``feedback.tasks.leaderboard_refresh`` (beat, and on demand) into the
``Leaderboard`` table; the page (``/leaderboard/``), its plot and ``GET /api/v1/leaderboard/`` only read it.
Which votes count is decided in one place, ``counting.counted_votes``.
"""
