"""`shrinkwatch privacy report`: the DPIA annex and the signage text from the site file
(privacy.report; registered by cli/privacy.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.context import settings_of


def report(
    ctx: typer.Context,
    site: Annotated[
        Path,
        typer.Argument(
            help="Site configuration YAML (the one `sites apply` reads).", dir_okay=False, metavar="SITE_FILE"
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder to write into (made if missing; files in it are replaced).",
            file_okay=False,
            metavar="FOLDER",
        ),
    ],
    controller: Annotated[
        str, typer.Option("--controller", help="Who is responsible for the cameras: the company's name.")
    ],
    contact: Annotated[
        str,
        typer.Option(
            "--contact", help="Where people send access requests and objections (email or address)."
        ),
    ],
    dpo: Annotated[
        str | None, typer.Option("--dpo", help="The data protection officer's name and contact, if any.")
    ] = None,
    store: Annotated[
        list[str] | None,
        typer.Option(
            "--store", metavar="ID", help="Only this store (by id); repeat for more. Default: every store."
        ),
    ] = None,
) -> None:
    """Write the DPIA annex (dpia-annex.md, .html) for the stores and a sign for each store's
    entrances (signage-STORE.txt, .html), from the site file and the settings. An invalid site
    file writes nothing."""
    from privacy.report import Controller, documents, write_documents
    from shrinkwatch.errors import ShrinkwatchError
    from shrinkwatch.site_file import load_site_file

    config = load_site_file(site)
    who = Controller(name=controller.strip(), contact=contact.strip(), dpo=(dpo or "").strip() or None)
    if not who.name or not who.contact:
        msg = "--controller and --contact must not be empty: the sign and the annex name them"
        raise ShrinkwatchError(msg)
    docs = documents(config, settings_of(ctx), who, store, datetime.now(UTC).date())
    try:
        paths = write_documents(docs, out)
    except OSError as exc:
        msg = f"{out}: cannot write the report there ({exc.strerror or exc})"
        raise ShrinkwatchError(msg) from None
    for path in paths:
        typer.echo(str(path))
