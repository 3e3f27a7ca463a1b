"""Names from configuration and words people typed go into Markdown and charts as text: no
link, image, HTML, directive, emoji, formula or address survives (checked in Chromium too,
as docs/DASHBOARD.md says)."""

from __future__ import annotations

import pytest

from streamlit_app import text
from streamlit_app.text import WORD_JOINER as J


@pytest.mark.parametrize(
    ("name", "markdown"),
    [
        ("Leeds", "Leeds"),
        ("St Mary's café", "St Mary\\'s café"),
        (
            "![x](http://evil.example/a.png)",
            f"\\!\\[x\\]\\(http\\:{J}\\/\\/evil{J}\\.example\\/a{J}\\.png\\)",
        ),
        ("[click](http://evil.example)", f"\\[click\\]\\(http\\:{J}\\/\\/evil{J}\\.example\\)"),
        ("<img src=x onerror=alert(1)>", "\\<img src\\=x onerror\\=alert\\(1\\)\\>"),
        (":red[boom]", f"\\:{J}red\\[boom\\]"),
        (":material/home:", f"\\:{J}material\\/home\\:{J}"),
        (":smile:", f"\\:{J}smile\\:{J}"),
        ("$x^2$", "\\$x\\^2\\$"),
        ("www.evil.example", f"www{J}\\.evil{J}\\.example"),
        ("me@evil.example", f"me{J}\\@evil{J}\\.example"),
        ("**bold** _it_ ~~gone~~", "\\*\\*bold\\*\\* \\_it\\_ \\~\\~gone\\~\\~"),
        ("# heading", "\\# heading"),
        ("1. first", f"1{J}\\. first"),
        ("- item | cell |", "\\- item \\| cell \\|"),
        ("`code`", "\\`code\\`"),
        ("back\\slash\\", "back\\\\slash\\\\"),
        ("two\nlines\r\nhere", "two lines here"),
        ("&amp; {x}", "\\&amp\\; \\{x\\}"),
    ],
)
def test_markdown_escapes_every_markup_character(name: str, markdown: str) -> None:
    assert text.markdown(name) == markdown


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("cam-1", "`cam-1`"),
        ("a`b", "``a`b``"),
        ("`x`", "`` `x` ``"),
        (":material/home:", f"`:{J}material/home:{J}`"),  # Streamlit rewrites :material/ even in code
        ("<b>\\*</b>", "`<b>\\*</b>`"),  # no escape is read in code, and none is needed
    ],
)
def test_code_spans_hold_any_characters(name: str, code: str) -> None:
    assert text.code(name) == code


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Razors (high value)", "Razors (high value)"),
        ("<a href='http://evil.example'>x</a>", "&lt;a href='http://evil.example'&gt;x&lt;/a&gt;"),
        ("<b>bold</b><br>", "&lt;b&gt;bold&lt;/b&gt;&lt;br&gt;"),
        ("Fish & chips &amp;", "Fish &amp; chips &amp;amp;"),
        ("$x^2$ :red[boom]", "$x^2$ :red[boom]"),  # Plotly reads neither (no MathJax here)
    ],
)
def test_chart_labels_escape_plotly_tags(name: str, label: str) -> None:
    assert text.chart(name) == label
