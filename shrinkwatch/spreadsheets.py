"""CSV for spreadsheets, with no cell that a spreadsheet runs as a formula (OWASP: CSV injection).

Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` as a
formula (`=HYPERLINK(...)`, `-2+3`, DDE), and one that starts with a tab or carriage return
may be trimmed to one. Text comes from people (a review note, a username) and from the site
file (store, camera and zone ids may start with `-`), so every text cell that starts with one
of those gets a single quote in front: the spreadsheet shows it as text, quote included.

Numbers (int, float, Decimal; not bool) are written as numbers and never prefixed: their
text is digits, a sign, a point and an exponent, which no spreadsheet runs as a formula, and
a negative number stays a number (sums and sorting work). Everything else is text.
Text cells are always quoted, so that a spreadsheet that splits on `;` or a tab keeps
`a;=1+2` one cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A cell as it should go into a CSV file: numbers as they are, None as empty text, and
    text that a spreadsheet would run as a formula with a `'` in front."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A CSV file (UTF-8, a header line, then one line per row) whose every cell went through
    `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow([safe_cell(name) for name in header])
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return out.getvalue().encode("utf-8")
