"""Risk weights per store (owner of `risk_weights`): versions the calibration learns from
the analysts' verdicts, the flows score with, and the dashboard shows.

A version is never changed, only followed by the next one, so an incident's score can always
be explained by the `weights_version` it carries. The calibration reads the verdicts through
`warehouse.incidents`; the dashboard's reader takes a scope like every question a person asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from psycopg.types.json import Jsonb

from warehouse.db import Connection
from warehouse.scope import Scope

if TYPE_CHECKING:  # pandas only for the dashboard's reader: the flows never load it
    import pandas as pd


@dataclass(frozen=True)
class WeightsVersion:
    """One calibrated set of weights of a store."""

    store_id: str
    version: int
    weights: dict[str, float]
    evidence: dict[str, dict[str, int]]
    method: str
    prior_strength: float
    reviews: int
    reviewed_until: datetime | None
    computed_at: datetime | None = None


_COLUMNS = """store_id, version, weights, evidence, method, prior_strength, reviews,
              reviewed_until, computed_at"""


def latest_weights(conn: Connection) -> dict[str, WeightsVersion]:
    """The weights in force: each store's highest version."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (store_id) {_COLUMNS} FROM risk_weights ORDER BY store_id, version DESC"
    ).fetchall()
    return {row["store_id"]: WeightsVersion(**row) for row in rows}


def weights_history(conn: Connection, store_id: str) -> list[WeightsVersion]:
    """Every version of a store's weights, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM risk_weights WHERE store_id = %s ORDER BY version DESC", (store_id,)
    ).fetchall()
    return [WeightsVersion(**row) for row in rows]


def save_weights(conn: Connection, new: WeightsVersion) -> None:
    """Store a new version (its number must be the next one; a repeat is ignored)."""
    conn.execute(
        """INSERT INTO risk_weights (store_id, version, weights, evidence, method,
                                     prior_strength, reviews, reviewed_until)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (store_id, version) DO NOTHING""",
        (
            new.store_id,
            new.version,
            Jsonb(new.weights),
            Jsonb(new.evidence),
            new.method,
            new.prior_strength,
            new.reviews,
            new.reviewed_until,
        ),
    )


def lock_calibration(conn: Connection) -> None:
    """Hold the calibration lock until this transaction ends: one run at a time, even with
    several schedulers pointed at the same database."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('shrinkwatch.calibration'))")


def weights_in_force(conn: Connection, scope: Scope) -> pd.DataFrame:
    """The calibrated risk weights in force per store in scope (stores never calibrated are
    absent: they use the defaults). Columns: store_id, version, signal, weight."""
    import pandas as pd

    rows = conn.execute(
        """SELECT DISTINCT ON (store_id) store_id, version, weights FROM risk_weights
           WHERE store_id = ANY(%s) ORDER BY store_id, version DESC""",
        (sorted(scope.store_ids),),
    ).fetchall()
    flat = [
        {"store_id": r["store_id"], "version": r["version"], "signal": name, "weight": weight}
        for r in rows
        for name, weight in sorted(r["weights"].items())
    ]
    return pd.DataFrame(flat, columns=["store_id", "version", "signal", "weight"])
