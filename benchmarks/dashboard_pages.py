"""First render of each dashboard page, measured in the browser, on the chain-scale seed.

Seeds (or, with --reuse-seed, reuses) the chain seed of `benchmarks.common.chain`
(90 days x 20 stores x 10 cameras), builds the rollups, starts the dashboard, signs in with
Debian's Chromium and loads every page `--loads` times: from asking for the page to its
heading shown, Streamlit's script finished and every chart drawn. Target: p95 <= 1.5 s.
Baseline in the same run: the sign-in page (a static page from the same server), so the
ratio says what the page itself costs over a round trip to the server.
Usage: python -m benchmarks.dashboard_pages [--reuse-seed] [--loads 10] [--days 90 ...]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

from benchmarks.common import BENCH_HOME, chain, chain_options, child_environment, machine
from shrinkwatch.net import free_port
from streamlit_app.browser import PAGES, browser_page, first_render_s, sign_in
from warehouse.accounts import add_user, get_user, set_password
from warehouse.db import connect


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chain_options(parser)
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--verbose", action="store_true", help="Also print every load's time")
    args = parser.parse_args()
    with chain(args) as settings:  # a database and topics of its own, seeded, rollups built
        dsn = settings.database_dsn
        with connect(dsn) as conn:
            password = secrets.token_urlsafe(12)
            try:
                get_user(conn, "bench")
                set_password(conn, "bench", password)
            except Exception:
                conn.rollback()
                add_user(conn, "bench", "analyst", password=password)
            incidents = conn.execute("SELECT count(*) AS n FROM incidents").fetchone()
        print(f"# dashboard pages on {incidents['n'] if incidents else 0} incidents; {machine()}", flush=True)

        port = free_port()
        env = child_environment(settings, "dashboard-settings")
        log = (BENCH_HOME / "dashboard.log").open("wb")
        app = subprocess.Popen(
            [sys.executable, "-m", "cli", "app", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.5)
            with browser_page() as page:
                sign_in(page, url, "bench", password)
                baseline = []
                for _ in range(args.loads):
                    start = time.perf_counter()
                    page.goto(f"{url}/signin")
                    page.get_by_label("Username").wait_for()
                    baseline.append(time.perf_counter() - start)
                page.goto(url)  # back in the app (the session cookie is still there)
                b50 = statistics.median(baseline)
                print(
                    f"{'baseline: the sign-in page':28s} p50 {b50 * 1000:6.0f} ms  "
                    f"p95 {p95(baseline) * 1000:6.0f} ms"
                )
                for target in PAGES:
                    times = [first_render_s(page, url, target) for _ in range(args.loads)]
                    if args.verbose:
                        print(f"  {target.slug} loads (ms): {[round(t * 1000) for t in times]}")
                    p50 = statistics.median(times)
                    print(
                        f"{target.slug:28s} p50 {p50 * 1000:6.0f} ms  p95 {p95(times) * 1000:6.0f} ms  "
                        f"{p50 / b50:5.1f}x the baseline  (target p95 <= 1500 ms)",
                        flush=True,
                    )
        finally:
            app.send_signal(signal.SIGTERM)
            app.wait(timeout=30)
            log.close()


if __name__ == "__main__":
    main()
