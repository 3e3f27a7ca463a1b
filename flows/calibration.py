"""Feedback calibration: per-store signal weights learnt from the analysts' verdicts.

Method (`beta-bernoulli-precision/1`). A signal's weight is read as its precision: the
chance that an incident in which the signal contributed is confirmed as theft. Its prior
is Beta(m·w0, m·(1 − w0)), where w0 is the default weight (flows.behaviour.risk, or the one a
registered signal was given) and m the prior strength (`calibration_prior_strength`: how
many verdicts the default is worth). With `a` confirmed and `b` rejected reviewed incidents
of the store in which the signal contributed (contribution > 0), the weight becomes the
posterior mean

    w = (m·w0 + a) / (m + a + b)

so confirmations move it towards 1, rejections towards 0, and without verdicts it stays the
default. Every run reads all verdicts (the result depends on them alone, not on earlier
runs) and writes a new version of a store's weights only when they change; each version
keeps its evidence counts and prior, so any score can be reproduced. Flows pick up the
newest version at their next site refresh and record on each incident state the version
that scored it (`incidents.weights_version`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flows.behaviour.signals import BUILT_IN_WEIGHTS, default_weight, load_extensions
from shrinkwatch.metrics import serve
from shrinkwatch.schedule import run_every
from shrinkwatch.settings import Settings
from warehouse.db import Connection, connect
from warehouse.incidents import reviewed_incidents
from warehouse.weights import WeightsVersion, latest_weights, lock_calibration, save_weights

log = logging.getLogger(__name__)

METHOD = "beta-bernoulli-precision/1"
MIN_WEIGHT = 0.01  # a signal never drops out of the explanation entirely


def posterior_weight(default: float, confirmed: int, rejected: int, prior_strength: float) -> float:
    """The posterior mean precision of a signal, rounded to 4 decimals."""
    alpha = prior_strength * default + confirmed
    beta = prior_strength * (1.0 - default) + rejected
    if alpha + beta <= 0:
        return round(default, 4)
    return round(max(MIN_WEIGHT, min(1.0, alpha / (alpha + beta))), 4)


Evidence = dict[str, dict[str, int]]  # {signal: {"confirmed": a, "rejected": b}}


def tally(rows: Iterable[dict[str, Any]]) -> dict[str, tuple[Evidence, int, datetime | None]]:
    """Per store: the evidence per signal, how many verdicts, the newest of them."""
    out: dict[str, tuple[Evidence, int, datetime | None]] = {}
    for row in rows:
        evidence, reviews, until = out.get(row["store_id"], ({}, 0, None))
        verdict = "confirmed" if row["user_confirmed"] else "rejected"
        for sig in row["signals"]:
            if sig.get("contribution", 0) > 0:
                counts = evidence.setdefault(sig["name"], {"confirmed": 0, "rejected": 0})
                counts[verdict] += 1
        reviewed = row["reviewed_at"]
        newest = reviewed if until is None or (reviewed is not None and reviewed > until) else until
        out[row["store_id"]] = (evidence, reviews + 1, newest)
    return out


def calibrated(
    store_id: str,
    evidence: Evidence,
    reviews: int,
    reviewed_until: datetime | None,
    prior_strength: float,
    version: int,
) -> WeightsVersion:
    """A store's weights from its verdicts (every known signal, so the table is complete)."""
    names = sorted(set(BUILT_IN_WEIGHTS) | set(evidence))
    weights = {
        name: posterior_weight(
            default_weight(name),
            evidence.get(name, {}).get("confirmed", 0),
            evidence.get(name, {}).get("rejected", 0),
            prior_strength,
        )
        for name in names
    }
    return WeightsVersion(
        store_id, version, weights, evidence, METHOD, prior_strength, reviews, reviewed_until
    )


def calibrate(
    conn: Connection, prior_strength: float, progress: Callable[[str], None] = log.info
) -> list[WeightsVersion]:
    """One calibration run: the new versions written (none when nothing changed)."""
    with conn.transaction():
        lock_calibration(conn)
        current = latest_weights(conn)
        verdicts = tally(reviewed_incidents(conn))
        for store_id in current.keys() - verdicts.keys():  # verdicts withdrawn: back to the prior
            verdicts[store_id] = ({}, 0, None)
        written = []
        for store_id, (evidence, reviews, until) in sorted(verdicts.items()):
            now = current.get(store_id)
            candidate = calibrated(
                store_id, evidence, reviews, until, prior_strength, (now.version if now else 0) + 1
            )
            if now is not None and now.weights == candidate.weights:
                continue
            save_weights(conn, candidate)
            written.append(candidate)
            moved = ", ".join(
                f"{name} {default_weight(name):.2f}->{w:.2f}"
                for name, w in candidate.weights.items()
                if abs(w - default_weight(name)) >= 0.005
            )
            progress(
                f"store {store_id}: weights version {candidate.version} from {reviews} verdicts"
                + (f" ({moved})" if moved else "")
            )
    if not written:
        progress("calibration: no store's weights changed")
    return written


def run_calibration(
    settings: Settings, *, schedule: bool = False, progress: Callable[[str], None] = print
) -> None:
    """Calibrate once, or (schedule) now and then every `calibration_interval_s` until stopped."""
    load_extensions(settings.extensions)

    def once() -> None:
        with connect(settings.database_dsn) as conn:
            calibrate(conn, settings.calibration_prior_strength, progress)

    if not schedule:
        once()
        return
    # A long-running service: its /metrics (build and process metrics) on the calibration port.
    with serve(settings, "calibration"):
        run_every(once, settings.calibration_interval_s, "calibration", progress)
