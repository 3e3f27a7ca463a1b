"""What each account has seen (owner of `incident_seen`): the dashboard's "new" marks.

Seen is apart from a verdict: an analyst opens an incident, or marks a page of them seen,
and they stop showing as new for that account only. The lists read these rows beside each
incident (`warehouse.incidents`); a verdict marks its incident seen through here.

Seen marks are an account's: a name that is no account (an API service token's verdict is
recorded by `token:<name>`) marks nothing, and is not an error.
"""

from __future__ import annotations

from collections.abc import Iterable

from warehouse.db import Connection
from warehouse.scope import Scope


def mark_seen(conn: Connection, scope: Scope, username: str, incident_ids: Iterable[str]) -> int:
    """Mark incidents (within the scope) seen by this account; returns how many were new (none
    for a name that is no account)."""
    ids = list(dict.fromkeys(incident_ids))
    with conn.transaction():
        return conn.execute(
            """INSERT INTO incident_seen (incident_id, username)
               SELECT incident_id, %s FROM incidents WHERE incident_id = ANY(%s) AND store_id = ANY(%s)
                 AND EXISTS (SELECT 1 FROM users WHERE username = %s)
               ON CONFLICT DO NOTHING""",
            (username, ids, sorted(scope.store_ids), username),
        ).rowcount
