"""The vote path's SQL plumbing: its statements on PostgreSQL, run through Django's connection.

On PostgreSQL (psycopg 3) the usual case of claiming a pair and of recording a vote is one statement each,
with ``$n`` placeholders converted once and the statement prepared once per connection; the ORM code in
``claims.py`` and ``votes.py`` is the general path, used on other databases and whenever a statement does
not settle the request.
"""

from __future__ import annotations

import functools
import re
from contextlib import nullcontext

from django.db import IntegrityError, connection, transaction

# The one-statement paths; tests switch them off to run the same contract through the ORM path, and
# bench/vote_path_app.py to compare.
FAST_SQL = True

# Django turns automatic prepared statements off (for transaction-mode poolers). These two statements take
# several times longer to plan than to run, so they are prepared explicitly, once per connection; behind
# PgBouncer in transaction mode that needs its max_prepared_statements (PgBouncer >= 1.21), or set this off.
PREPARE = True


@functools.cache
def _statement_cursor_class():
    import psycopg

    class StatementCursor(psycopg.RawCursor):
        """``$1``-style placeholders, bound server-side; prepared (once per connection) when ``PREPARE`` is on."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=PREPARE or None, binary=binary)

        def _send_query_prepared(self, name, pgq, *, binary=None):
            # psycopg records the query only when it is not prepared; Django's query log reads it here.
            self._query = pgq
            return super()._send_query_prepared(name, pgq, binary=binary)

    return StatementCursor


@functools.cache
def positional(sql: str) -> tuple[str, tuple[str, ...]]:
    """A statement's ``%(name)s`` placeholders as ``$1``, ``$2``..., and the names in that order.

    psycopg parses a query's placeholders on every call when the query is longer than 4 KiB (``_NEXT_SQL``
    is): that parse was a seventh of a gunicorn worker's CPU on the vote path. A raw cursor takes ``$n``
    placeholders as they are, so each statement is converted once, here.
    """
    names: list[str] = []

    def number(match: re.Match) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    converted = re.sub(r"%\((\w+)\)s", number, sql)
    if "%" in converted.replace("%%", ""):
        raise ValueError("a placeholder other than %(name)s")
    return converted.replace("%%", "%"), tuple(names)


def one_statement_paths() -> bool:
    """Whether the vote path runs as single statements here: PostgreSQL through psycopg 3, unless off."""
    if not FAST_SQL or connection.vendor != "postgresql":
        return False
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def execute_one(sql: str, params: dict):
    """Run one of the vote path's statements on Django's connection; its first row, or None.

    Through Django's cursor wrapper (health check, error translation, queries seen by tests), with the
    statement prepared on PostgreSQL when ``PREPARE`` is on.
    """
    query, names = positional(sql)
    with connection.cursor() as cursor:
        raw = connection.connection
        if PREPARE and raw.prepare_threshold is None:
            # psycopg prepares nothing while the threshold is None (Django's default); a threshold no
            # other statement reaches keeps that so for everything but these, which ask to be prepared.
            raw.prepare_threshold = 2**31 - 1
        cursor.cursor.close()
        cursor.cursor = _statement_cursor_class()(raw)
        cursor.execute(query, [params[name] for name in names])
        return cursor.fetchone()


def execute_one_or_none(sql: str, params: dict):
    """``execute_one``, or None when the statement breaks a unique constraint (the ORM path then decides).

    Alone the statement is atomic; inside a caller's transaction a failure must not abort that transaction.
    """
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            return execute_one(sql, params)
    except IntegrityError:
        return None


def loaded_instance(model, values: dict):
    """A model instance as if read by the ORM with only these fields (others load on access)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])
