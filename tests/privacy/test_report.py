"""`shrinkwatch privacy report`: the DPIA annex and the signs carry each store's own figures,
show names from the site file as text (never markup), and an invalid site file writes nothing.
No service is needed: the report reads only the site file and the settings."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from tests.support import run_cli

SITE = {
    "stores": [
        {
            "id": "store-a",
            "name": "Leeds Kirkgate",
            "city": "Leeds",
            "timezone": "Europe/London",
            "privacy": {"retention_days": {"snapshots": 7, "clips": 3, "live": 2}, "blur_heads": True},
        },
        {
            "id": "store-b",
            "name": "York Parliament Street",
            "timezone": "Europe/London",
            "privacy": {"retention_days": {"snapshots": 45, "clips": 60, "live": 1}, "blur_heads": False},
        },
    ],
    "cameras": [
        {
            "id": "cam-a1",
            "store_id": "store-a",
            "name": "Razor aisle",
            "stream_url": "rtsp://admin:hunter2@10.0.0.5/stream1",
            "zones": [
                {
                    "id": "z-razors",
                    "name": "Razors",
                    "kind": "high_value",
                    "polygon": [[0, 0], [1, 0], [1, 1]],
                },
                {
                    "id": "z-garden",
                    "name": "Neighbour's garden",
                    "kind": "privacy",
                    "polygon": [[0, 0], [0.2, 0], [0.2, 0.2]],
                },
            ],
        },
        {"id": "cam-b1", "store_id": "store-b", "name": "Front doors", "stream_url": "/videos/b1.mp4"},
    ],
    "alerts": {
        "recipients": [
            {
                "id": "ana",
                "name": "Ana (Leeds manager)",
                "channels": ["email", "sms"],
                "email": "ana@leeds.example",
                "phone": "+447700900123",
                "stores": ["store-a"],
            },
            {
                "id": "case-system",
                "name": "Case system",
                "channels": ["webhook"],
                "webhook_url": "https://hooks.example/intake",
                "webhook_secret": "${HOOK_SECRET}",
                "stores": ["store-b"],
            },
        ]
    },
}
SETTINGS = {
    "retention_occupancy_days": 21,
    "retention_heatmap_days": 90,
    "retention_evidence_access_days": 400,
    "reveal_minutes": 15,
}
CONTROLLER = ["--controller", "Smith & Sons Retail Ltd", "--contact", "privacy@smith.example"]
FILES = {
    "dpia-annex.md",
    "dpia-annex.html",
    "signage-store-a.txt",
    "signage-store-a.html",
    "signage-store-b.txt",
    "signage-store-b.html",
}
# Every element the report's pages (and the annex's Markdown rendered) may contain.
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "code"}
PAGE_TAGS |= {"table", "thead", "tbody", "tr", "th", "td"}


class _Page(HTMLParser):
    """The elements and attributes of an HTML page, and its text as a reader sees it."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self._head = False
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        self._head = self._head or tag in ("title", "style")

    def handle_endtag(self, tag: str) -> None:
        self._head = self._head and tag not in ("title", "style")

    def handle_data(self, data: str) -> None:
        if not self._head:  # what the page shows, not its title or style sheet
            self.text.append(data)


def _markdown_as_html(text: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(text)


def _report(
    tmp_path: Path, site: dict, extra: list[str] | None = None, settings: dict | None = None
) -> tuple[Path, object]:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site, sort_keys=False), encoding="utf-8")
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"home": str(tmp_path / "home"), **(settings or SETTINGS)}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHRINKWATCH_")}
    out = tmp_path / "report"
    args = ["--settings", str(settings_file), "privacy", "report", str(site_file), "--out", str(out)]
    return out, run_cli([*args, *CONTROLLER, *(extra or [])], env=env, timeout=60)


def test_each_store_has_its_own_retention_blur_and_zones(tmp_path: Path) -> None:
    out, result = _report(tmp_path, SITE, ["--dpo", "J. Doe, dpo@smith.example"])
    assert result.returncode == 0, result.stderr
    assert {Path(line).name for line in result.stdout.split()} == FILES
    assert {p.name for p in out.iterdir()} == FILES

    annex = (out / "dpia-annex.md").read_text(encoding="utf-8")
    # Each store's retention and blur, from its own `privacy`.
    assert "| `store-a` | 7 days | 3 days | 2 days | yes |" in annex
    assert "| `store-b` | 45 days | 60 days | 1 day | no |" in annex
    assert "except in York Parliament Street (store-b), where the site file turns blurring off" in annex
    # Cameras with their zones and privacy zones; recipients by channel kind.
    assert "| `store-a` | Razor aisle |  | 5 | Razors | Neighbour's garden |" in annex
    assert "| `store-b` | Front doors |  | 5 | none | none |" in annex
    assert "| `store-a` | Ana (Leeds manager) | email, sms |" in annex
    assert "| `store-b` | Case system | webhook |" in annex
    # The settings' figures.
    assert "| `occupancy_minutes` | 21 days, then hourly totals only |" in annex
    assert "| `heatmap_hours` | 90 days, then daily totals only |" in annex
    assert "| `evidence_access` | 400 days |" in annex
    assert "who reveals it with a reason, for 15 minutes" in annex
    assert "Data protection officer: J. Doe, dpo@smith.example" in annex
    # Nothing secret or reaching a person: no stream address, recipient address or number.
    for name in FILES:
        text = (out / name).read_text(encoding="utf-8")
        for secret in ("hunter2", "10.0.0.5", "ana@leeds.example", "+447700900123", "hooks.example"):
            assert secret not in text, (name, secret)

    # The HTML annex says the same as the Markdown one.
    annex_page = "".join(_Page((out / "dpia-annex.html").read_text(encoding="utf-8")).text)
    assert "".join(_Page(_markdown_as_html(annex)).text).replace("\n", "") == annex_page.replace("\n", "")

    sign_a = (out / "signage-store-a.txt").read_text(encoding="utf-8")
    sign_b = (out / "signage-store-b.txt").read_text(encoding="utf-8")
    assert sign_a.startswith("CCTV with automated behaviour analysis\n")
    assert "Leeds Kirkgate (Leeds) is monitored by CCTV operated by Smith & Sons Retail Ltd" in sign_a
    assert "kept for 7 days and video clips for 3 days" in sign_a
    assert "Faces are blurred in stored images." in sign_a
    assert "York Parliament Street is monitored" in sign_b
    assert "kept for 45 days and video clips for 60 days" in sign_b
    assert "Faces are blurred" not in sign_b
    for sign in (sign_a, sign_b):
        assert "Contact: privacy@smith.example. Data protection officer: J. Doe, dpo@smith.example." in sign
        assert "no face recognition" in sign and "within one month" in sign
    # The printable page is the text's words (the `&` escaped in the markup).
    page_a = (out / "signage-store-a.html").read_text(encoding="utf-8")
    assert "Smith &amp; Sons Retail Ltd" in page_a
    page_text = "".join(_Page(page_a).text)
    assert all(paragraph in page_text for paragraph in sign_a.strip().split("\n\n"))


def test_one_store_asked_for(tmp_path: Path) -> None:
    out, result = _report(tmp_path, SITE, ["--store", "store-b"])
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {
        "dpia-annex.md",
        "dpia-annex.html",
        "signage-store-b.txt",
        "signage-store-b.html",
    }
    annex = (out / "dpia-annex.md").read_text(encoding="utf-8")
    assert "`store-b`" in annex and "store-a" not in annex and "Leeds Kirkgate" not in annex


HOSTILE = {
    "store": "<script>alert(1)</script>",
    "camera": '<img src=x onerror="alert(2)">',
    "zone": "| 1. [x](javascript:alert(3)) **bold** `tick`",
    "location": "# heading\n- item",
}


def test_names_from_the_site_file_are_text_never_markup(tmp_path: Path) -> None:
    site = yaml.safe_load(yaml.safe_dump(SITE))
    site["stores"][0]["name"] = HOSTILE["store"]
    site["cameras"][0]["name"] = HOSTILE["camera"]
    site["cameras"][0]["location"] = HOSTILE["location"]
    site["cameras"][0]["zones"][1]["name"] = HOSTILE["zone"]
    out, result = _report(tmp_path, site)
    assert result.returncode == 0, result.stderr

    pages = {
        name: (out / name).read_text(encoding="utf-8") for name in ("dpia-annex.html", "signage-store-a.html")
    }
    pages["dpia-annex.md rendered"] = _markdown_as_html((out / "dpia-annex.md").read_text(encoding="utf-8"))
    for name, markup in pages.items():
        page = _Page(markup)
        assert page.tags <= PAGE_TAGS, (name, page.tags - PAGE_TAGS)
        assert page.attributes <= {"lang", "charset"}, (name, page.attributes)
        text = "".join(page.text)
        assert HOSTILE["store"] in text, name  # shown as typed
        if name != "signage-store-a.html":
            assert HOSTILE["camera"] in text and HOSTILE["zone"] in text, name
            assert HOSTILE["location"].replace("\n", " ") in text, name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["signage-store-a.html"]
    # The annex's tables keep their columns: the zone's `|` is a character, not a cell's end.
    annex = _Page(pages["dpia-annex.md rendered"])
    assert annex.tags >= {"table", "td"}


def test_a_bad_site_file_gives_its_errors_and_writes_nothing(tmp_path: Path) -> None:
    site = yaml.safe_load(yaml.safe_dump(SITE))
    site["stores"][1]["privacy"]["retention_days"]["clips"] = 0
    site["cameras"][0]["zones"][0]["kind"] = "secret"
    out, result = _report(tmp_path, site)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "2 error(s)" in result.stderr
    assert "stores[1].privacy.retention_days.clips (line " in result.stderr
    assert "cameras[0].zones[0].kind (line " in result.stderr
    assert not out.exists()


def test_an_unknown_store_writes_nothing(tmp_path: Path) -> None:
    out, result = _report(tmp_path, SITE, ["--store", "store-a", "--store", "store-z"])
    assert result.returncode == 2
    assert "no store 'store-z' in the site file (it has store-a, store-b)" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "text",
    ["# heading", "- item", "+ item", "1. first", "2) second", "> quote", "=== ", "***", "<b>x</b>", "a | b"],
)
@pytest.mark.parametrize("block", ["paragraph", "bullet", "heading", "cell"])
def test_markdown_shows_text_as_typed_wherever_it_starts(text: str, block: str) -> None:
    from privacy.report import Bullets, Heading, Paragraph, Table, to_markdown

    blocks = {
        "paragraph": Paragraph(text),
        "bullet": Bullets((text,)),
        "heading": Heading(2, text),
        "cell": Table(("a", "b"), ((text, "x"),)),
    }
    page = _Page(_markdown_as_html(to_markdown([blocks[block]])))
    shown = {"paragraph": {"p"}, "bullet": {"ul", "li"}, "heading": {"h2"}, "cell": PAGE_TAGS - {"code"}}
    assert page.tags <= shown[block]
    assert text.strip() in "".join(page.text)
