"""Simulated volunteers: a crowd that votes through the real HTTP API and measures its labels against the truth.

A client of the platform, not a part of it: each volunteer is an account with an API token that asks
``GET /api/v1/pairs/next/`` and answers ``POST /api/v1/votes/``, so every vote takes the path a person's does.
The judgement comes from an oracle the volunteers' screen never shows, the completions' test outcomes read from
the database by pair id (``oracle``), bent by each volunteer's profile (``profiles``). ``simulation`` runs the
crowd over ``transport`` (``requests`` against a running server, or Django's test client in this process);
``report`` reads the stored votes back and scores them. ``manage.py simulate_crowd`` is the command.

Nothing in the platform imports this package; it imports ``accounts`` (accounts and tokens) and ``datasets``
(the majority label), so it sits rightmost in the import rules' layers.
"""
