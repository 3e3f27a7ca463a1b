"""The dashboard's metrics (streamlit_app.server): `shrinkwatch app` as a real process counts
each refused sign-in (a wrong password, an unknown account) and not a good one, on the
dashboard role's port, served once for the process."""

from __future__ import annotations

from pathlib import Path

from shrinkwatch import __version__
from shrinkwatch.settings import Settings
from tests.metrics_support import metrics_base, metrics_url, try_scrape, value
from tests.streamlit_app.conftest import PASSWORD, sign_in
from tests.streamlit_app.test_signin_server import post_signin, running_dashboard
from tests.support import wait_for

FAILURES = "shrinkwatch_sign_in_failures_total"


def test_refused_sign_ins_are_counted(two_stores: Settings, tmp_path: Path) -> None:
    ready = two_stores.model_copy(update={"metrics_port": metrics_base("dashboard")})
    sign_in(ready, "ana")  # the account
    url = metrics_url(ready, "dashboard")
    with running_dashboard(ready, tmp_path) as dashboard:
        first = wait_for(lambda: try_scrape(url), 60, what="the dashboard's /metrics")
        assert value(first, FAILURES, surface="dashboard") == 0
        for password in ("wrong", "Correct-horse-battery", ""):
            assert post_signin(dashboard, "ana", password).status_code == 401
        assert post_signin(dashboard, "nobody", PASSWORD).status_code == 401
        assert post_signin(dashboard, "ana", PASSWORD).status_code == 303  # signed in: not counted
        samples = wait_for(lambda: try_scrape(url), 60, what="the dashboard's /metrics")
    assert value(samples, FAILURES, surface="dashboard") == 4
    assert value(samples, FAILURES, surface="api") is None  # the API's, in its own process
    assert value(samples, "shrinkwatch_build_info", version=__version__, role="dashboard") == 1
    log = (tmp_path / "app.log").read_text()
    assert "metrics:" not in log  # served once: no second start found its port taken
