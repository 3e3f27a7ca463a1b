"""Return on investment: what each store's confirmed incidents are worth against what the
system costs it, month by month, and the assumptions behind it (a store's `economics`).

Owns no table. `roi_by_month` reads the monthly rollup (`warehouse.rollups`), scoped like
every question; `set_economics` checks new assumptions as the site file's are checked and
hands them to `warehouse.site_tables`, which owns the `stores` row they live on (the ROI
rollup re-prices the store's months at its next refresh).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from pydantic import ValidationError

from shrinkwatch.site_file import Economics
from warehouse.db import Connection
from warehouse.rollups import ROI_MONTHLY
from warehouse.scope import QueryError, Scope, check_days
from warehouse.site_tables import set_store_economics


def roi_by_month(
    conn: Connection, scope: Scope, first_month: date, last_month: date, stores: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return on investment per store and month (months as their first day, store-local).
    Columns: store_id, month, currency, confirmed, prevented_loss, monthly_cost, net_benefit,
    roi_pct, payback_months."""
    check_days(first_month, last_month)
    rows = conn.execute(
        f"""SELECT {", ".join(ROI_MONTHLY.columns)}
           FROM rollup_roi_monthly
           WHERE store_id = ANY(%(scope)s) AND (%(stores)s::text[] IS NULL OR store_id = ANY(%(stores)s))
             AND month BETWEEN date_trunc('month', %(first)s::date) AND %(last)s
           ORDER BY store_id, month""",
        {
            "scope": sorted(scope.store_ids),
            "stores": list(stores) or None,
            "first": first_month,
            "last": last_month,
        },
    ).fetchall()
    return pd.DataFrame(rows, columns=list(ROI_MONTHLY.columns))


def set_economics(conn: Connection, scope: Scope, store_id: str, economics: dict[str, Any]) -> bool:
    """Replace a store's ROI assumptions (validated like the site file's `economics`); the ROI
    rollup re-prices all of the store's months at its next refresh. False when the store is
    not in scope."""
    try:
        checked = Economics.model_validate(economics)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise QueryError(problems) from None
    return set_store_economics(conn, scope, store_id, checked)
