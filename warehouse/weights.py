"""Risk weights per store (versioned) and the analysts' verdicts they are learnt from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from warehouse.db import Connection


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
