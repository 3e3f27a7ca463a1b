"""CSV cells that a spreadsheet would run as formulas are written as text (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from shrinkwatch.spreadsheets import csv_bytes, safe_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("-cam-1", "'-cam-1"),  # a site-file id may start with '-'
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+2", "'\t=1+2"),
        ("\r=1+2", "'\r=1+2"),
        ("-12.5", "'-12.5"),  # text that looks like a number is still text (a note, an id)
        ("ok =1+2", "ok =1+2"),  # only the first character counts
        (" =1+2", " =1+2"),  # a leading space: shown as text by spreadsheets
        ("'quoted", "'quoted"),
        ("", ""),
        (None, ""),
        (True, "True"),  # a bool is text, not a number
        (-0.25, -0.25),  # numbers stay numbers, negative ones too
        (-3, -3),
        (Decimal("-1.5"), Decimal("-1.5")),
        (0.91, 0.91),
        (datetime(2026, 3, 8, 2, 30, tzinfo=UTC), "2026-03-08 02:30:00+00:00"),
    ],
)
def test_safe_cell(value: object, expected: object) -> None:
    assert safe_cell(value) == expected
    assert type(safe_cell(value)) is type(expected)


def test_a_file_reads_back_as_text_cells_and_numbers() -> None:
    body = csv_bytes(
        ["note", "score", "track", "where"],
        [["=1+2;=3+4", 0.5, -1, "a;=1+2"], ["fine", 1.0, None, "@x\nsecond line"]],
    )
    assert body.decode("utf-8").splitlines()[:2] == [
        '"note","score","track","where"',
        '"\'=1+2;=3+4",0.5,-1,"a;=1+2"',
    ]
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert rows[2] == ["fine", "1.0", "", "'@x\nsecond line"]
