"""Names and notes shown as the characters people typed, never as markup.

What comes from configuration or from users (store, camera and zone names, recipients,
display names, review notes, error messages that quote them) goes into a page through
Streamlit's Markdown or a Plotly chart, and both read markup: a camera named
`![x](http://evil.example/a.png)` would be an image the browser fetches, `[click](...)` a
link, `:red[boom]` coloured text, `$x^2$` a formula, `<b>` bold in a chart. Every such value
passes through one of these functions on its way out:

- `markdown(value)` for `st.markdown`, `st.caption`, `st.toast`, `st.error` and the like,
  titles, metric labels, `help=` tooltips: every ASCII punctuation character gets a
  backslash (CommonMark's escape: no link, image, emphasis, HTML, `:red[...]` or
  `:material/...:` directive, `$...$` math or list), and line breaks become spaces.
  Bare addresses (`www.x.example`, `http://...`, `a@b.example`) are turned into links
  after escapes are read, so a word joiner (U+2060, zero-width) also goes after each `:`
  and before each `.` and `@`: nothing changes on screen, and no address is found.
- `code(value)` for a value shown as inline code (backslashes do not escape in code; a
  word joiner after each `:` keeps Streamlit from reading `:material/...`).
- `chart(value)` for Plotly: trace names (legends), hover text, tick labels and annotations
  (`&`, `<` and `>` as entities; Plotly's own tags and links then show as typed).

Plain-text places need none of this and must not get it (a backslash would show there):
`st.dataframe` cells, widget values and selectbox or multiselect options.
"""

from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
WORD_JOINER = "\u2060"
# Where a bare address would start: `http://`, `www.`, `name@host`.
_ESCAPED = {":": "\\:" + WORD_JOINER, ".": WORD_JOINER + "\\.", "@": WORD_JOINER + "\\@"}


def markdown(value: object) -> str:
    """`value` as Markdown that shows exactly its characters, on one line."""
    flat = _LINE_BREAKS.sub(" ", str(value))
    return _PUNCTUATION.sub(lambda m: _ESCAPED.get(m[1], "\\" + m[1]), flat)


def code(value: object) -> str:
    """`value` as an inline code span (its characters as they are, in monospace)."""
    flat = _LINE_BREAKS.sub(" ", str(value)).replace(":", ":" + WORD_JOINER)
    fence = "`" * (max((len(run) for run in re.findall("`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") or not flat.strip() else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def chart(value: object) -> str:
    """`value` as Plotly text (a trace name, tick label, hover text or annotation) that
    shows exactly its characters."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
