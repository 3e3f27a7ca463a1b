"""Write a screenshot of every dashboard page to docs/screenshots/ (what people see first),
and of the API's pages.

Point it at a running dashboard, best the demo's (a real camera, real incidents with their
evidence, and two weeks of seeded history), and with `--api` at a running `shrinkwatch api`:

    shrinkwatch demo                      # prints "sign in as demo / PASSWORD" and the API's address
    python -m streamlit_app.screenshots --url http://127.0.0.1:8501 --user demo --password PASSWORD \
        --api http://127.0.0.1:8600
    python -m streamlit_app.screenshots --api http://127.0.0.1:8600     # the API's pages alone

Each dashboard page is shot once it has rendered (its script finished, its charts drawn),
signed in as the given account, at 1400 x 900 and full page height. The API's pages need no
token, and none is used (Swagger UI would print it in a request it tried): `api-docs.png` is
Swagger UI at /docs with every route listed and one incident's operation opened (down to the
last route, not the models below), `api-redoc.png` ReDoc at /redoc on the incident list.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shrinkwatch.errors import ShrinkwatchError
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


API_OPENED = "#operations-incidents-incident_v1_incidents__incident_id__get"  # GET /v1/incidents/{id}
API_REDOC_AT = "#tag/incidents/operation/incidents_v1_incidents_get"  # GET /v1/incidents


def shoot_api(url: str, out: Path = OUT) -> list[Path]:
    """Save `out/api-docs.png` and `out/api-redoc.png` of the API at `url`; return them."""
    from playwright.sync_api import expect

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "api-docs.png", out / "api-redoc.png"]
    with browser_page() as page:
        page.goto(f"{url}/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=60_000)
        opened = page.locator(API_OPENED)
        opened.locator(".opblock-summary-control").click()
        expect(opened.locator(".responses-table").first).to_be_visible(timeout=60_000)
        page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus ring
        page.mouse.move(0, 0)  # nor a hover's copy button
        box = page.locator(".opblock").last.bounding_box()
        if box is None:
            msg = f"{url}/docs lists no route"
            raise ShrinkwatchError(msg)
        bottom = int(box["y"] + box["height"]) + 24
        page.screenshot(
            path=str(written[0]), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": bottom}
        )
        print(f"  {written[0]}")
        page.goto(f"{url}/redoc{API_REDOC_AT}")
        expect(page.locator("[data-section-id^='operation/']").first).to_be_attached(timeout=60_000)
        expect(page.get_by_role("heading", name="Incidents, newest first")).to_be_in_viewport(timeout=60_000)
        page.wait_for_timeout(800)  # its scroll to the operation settles
        page.screenshot(path=str(written[1]))
        print(f"  {written[1]}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the dashboard (default: the demo's)")
    parser.add_argument("--user", default="demo")
    parser.add_argument("--password", help="that account's password (the demo prints it); none: no dashboard")
    parser.add_argument(
        "--api", metavar="URL", help="also the API's pages, /docs and /redoc, of the API at URL"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.password is None and args.api is None:
        parser.error("give --password (the dashboard's pages), --api (the API's), or both")
    if args.password is not None:
        shoot(args.url.rstrip("/"), args.user, args.password, args.out)
    if args.api is not None:
        shoot_api(args.api.rstrip("/"), args.out)


if __name__ == "__main__":
    main()
