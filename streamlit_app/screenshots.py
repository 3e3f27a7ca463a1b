"""Write a screenshot of every dashboard page to docs/screenshots/ (what people see first).

Point it at a running dashboard, best the demo's (a real camera, real incidents with their
evidence, and two weeks of seeded history):

    shrinkwatch demo                      # prints "sign in as demo / PASSWORD"
    python -m streamlit_app.screenshots --url http://127.0.0.1:8501 --user demo --password PASSWORD

Each page is shot once it has rendered (its script finished, its charts drawn), signed in as
the given account, at 1400 x 900 and full page height.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shrinkwatch.settings import REPO_ROOT
from streamlit_app.browser import ADMIN_PAGES, PAGES, browser_page, sign_in, wait_rendered

OUT = REPO_ROOT / "docs" / "screenshots"


def incident_with_evidence() -> str | None:
    """The newest incident whose snapshot is saved, from the warehouse these settings name
    (the review page's screenshot shows it), or None. Every incident names its snapshot from
    the start; the file is what says it was saved."""
    from shrinkwatch.paths import evidence_file
    from shrinkwatch.settings import load_settings
    from warehouse.db import connect
    from warehouse.incidents import newest_snapshots

    try:
        settings = load_settings(None)
        with connect(settings.database_dsn, timeout_s=3) as conn:
            named = newest_snapshots(conn)
    except Exception:  # no database here: the review page shows the newest awaiting a verdict
        return None
    return next((i for i, name in named if evidence_file(settings.evidence_dir(), name)), None)


def shoot(url: str, username: str, password: str, out: Path = OUT) -> list[Path]:
    """Sign in and save `out/<page>.png` for every page (and the sign-in form); return them."""
    review_id = incident_with_evidence()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with browser_page() as page:
        page.goto(f"{url}/signin")
        page.get_by_label("Username").wait_for()
        written.append(out / "sign-in.png")
        page.screenshot(path=str(written[-1]))
        sign_in(page, url, username, password)
        for target in (*PAGES, *ADMIN_PAGES):  # (sign in as an admin to get them all)
            path = target.path
            if target.slug == "review" and review_id:
                path = f"{path}?id={review_id}"
            page.goto(f"{url}{path}")
            wait_rendered(page, target.heading)
            # The page scrolls inside Streamlit's main block: make the window as tall as it.
            tall = page.evaluate(
                "Math.max(...[...document.querySelectorAll('[data-testid=stMain] *')]"
                ".slice(0, 1).map(e => e.scrollHeight), 900)"
            )
            page.set_viewport_size({"width": 1400, "height": min(int(tall) + 40, 3200)})
            page.wait_for_timeout(800)  # the charts resize and finish their transitions
            wait_rendered(page, target.heading)
            for _ in range(100):  # widgets drawn (not their loading placeholders)
                if not page.get_by_test_id("stSkeleton").count():
                    break
                page.wait_for_timeout(100)
            written.append(out / f"{target.slug}.png")
            page.screenshot(path=str(written[-1]))
            page.set_viewport_size({"width": 1400, "height": 900})
            print(f"  {written[-1]}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the dashboard (default: the demo's)")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", required=True, help="that account's password (the demo prints it)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    shoot(args.url.rstrip("/"), args.user, args.password, args.out)


if __name__ == "__main__":
    main()
