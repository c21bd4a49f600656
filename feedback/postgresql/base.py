"""Django's PostgreSQL backend with a connection health check that costs no round trip.

With persistent connections (``CONN_MAX_AGE``) Django checks a connection at the start of each request
that uses it (``CONN_HEALTH_CHECKS``) by running ``SELECT 1``: one more round trip on every request. On
the vote path that was one of three round trips per vote, and under load every round trip also waits for
the GIL again when it returns.

Here a connection that is idle (no transaction open, status OK) is checked by looking at its socket
instead: the server writes nothing to an idle connection unless something happened to it. A backend
ended by ``pg_terminate_backend``, a server shutdown or a crash leaves the socket readable (a FATAL
message or end-of-file); then, and in any unusual state, the check falls back to Django's ``SELECT 1``,
which decides. What this cannot see, a peer that vanished without closing the socket (a network cut
between hosts), Django's own check would only see after its TCP timeout too.
"""

from __future__ import annotations

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
            if not poller.poll(0):
                return True
        except (OSError, ValueError, psycopg.Error):
            pass  # the socket is gone or odd: let the query decide
        return super().is_usable()
