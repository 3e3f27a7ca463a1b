"""What every dashboard page does first, written once: the account app.py checked for this
run and its scope, the warehouse connection, the page's heading, and the stores the account
may see, with their names and time zones. A page with nothing to show without stores stops
there, saying so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from streamlit_app import auth, data
from warehouse.db import Connection
from warehouse.scope import Scope

NO_STORES = "No stores to show: apply a site file (`shrinkwatch sites apply`), or ask an admin for access."


@dataclass(frozen=True)
class Opening:
    """What a page starts from; the connection and the stores are looked up when first used."""

    signed: auth.SignedIn

    @property
    def scope(self) -> Scope:
        return self.signed.scope

    @property
    def is_admin(self) -> bool:
        return self.signed.user.is_admin

    @property
    def conn(self) -> Connection:
        """The dashboard's warehouse connection (streamlit_app.data)."""
        return data.connection()

    @functools.cached_property
    def stores(self) -> pd.DataFrame:
        """The stores in the scope: id, name, timezone, economics."""
        return data.stores(self.scope)

    @functools.cached_property
    def store_names(self) -> dict[str, str]:
        """Store id -> name, for the stores in the scope."""
        return dict(zip(self.stores["id"], self.stores["name"], strict=True))

    @functools.cached_property
    def timezones(self) -> dict[str, str]:
        """Store id -> IANA time zone, for the stores in the scope."""
        return dict(zip(self.stores["id"], self.stores["timezone"], strict=True))


def start(title: str | None, caption: str | None = None, *, no_stores: str | None = NO_STORES) -> Opening:
    """Open a page: its title and caption (each when given), then, when the account sees no
    store, `no_stores` and the page stops there (None: the page goes on without stores)."""
    page = Opening(auth.page())
    if title is not None:
        st.title(title)
    if caption is not None:
        st.caption(caption)
    if no_stores is not None and page.stores.empty:
        st.info(no_stores)
        st.stop()
    return page
