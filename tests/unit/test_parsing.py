"""Parsing of Markdown, plain text, HTML and PDF into sections (core.ingest.parsing)."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from core.ingest.parsing import (
    SUPPORTED_SUFFIXES,
    ParsedDocument,
    ParseError,
    Section,
    parse_bytes,
    parse_file,
)
from tests.support.pdf import make_pdf

# A full-width line: the PDF paragraph heuristic judges other lines against this width.
WIDE = "Members can choose from a wide range of providers in the network across the state"


def all_text(doc: ParsedDocument) -> str:
    return "\n\n".join(section.text for section in doc.sections)


def section_with(doc: ParsedDocument, needle: str) -> Section:
    return next(section for section in doc.sections if needle in section.text)


# ----------------------------------------------------------------------------------- Markdown

MARKDOWN = """\
---
title: Employee Benefits Guide
owner: hr
tags: [benefits, health]
---
# Benefits

Intro paragraph that is
hard wrapped over two lines.

## Dental

- Cleanings twice a year
- Fillings at 80%

| Plan | Cost |
|------|------|
| Basic | $10 |

```bash
# not a heading, just a shell comment
echo hi
```

### Orthodontics

Braces are covered for children.

## Vision

Glasses every two years.
"""


def test_markdown_front_matter_and_title() -> None:
    doc = parse_bytes(MARKDOWN.encode(), ".md", "fallback")
    assert doc.title == "Employee Benefits Guide"
    assert doc.front_matter["owner"] == "hr"
    assert doc.front_matter["tags"] == ["benefits", "health"]
    assert "title:" not in all_text(doc)


def test_markdown_heading_paths_nest_by_level() -> None:
    doc = parse_bytes(MARKDOWN.encode(), ".md", "fallback")
    assert section_with(doc, "Intro paragraph").heading_path == ("Benefits",)
    assert section_with(doc, "Cleanings").heading_path == ("Benefits", "Dental")
    assert section_with(doc, "Braces").heading_path == ("Benefits", "Dental", "Orthodontics")
    assert section_with(doc, "Glasses").heading_path == ("Benefits", "Vision")
    assert all(section.page is None for section in doc.sections)


def test_markdown_code_fence_lines_are_not_headings() -> None:
    doc = parse_bytes(MARKDOWN.encode(), ".md", "fallback")
    code = section_with(doc, "not a heading")
    assert code.heading_path == ("Benefits", "Dental")
    assert "# not a heading, just a shell comment" in code.text
    assert "echo hi" in code.text
    assert not any("not a heading" in part for s in doc.sections for part in s.heading_path)


def test_markdown_keeps_lists_and_tables_as_lines_and_unwraps_prose() -> None:
    doc = parse_bytes(MARKDOWN.encode(), ".md", "fallback")
    assert "Intro paragraph that is hard wrapped over two lines." in all_text(doc)
    dental = section_with(doc, "Cleanings").text
    assert "- Cleanings twice a year\n- Fillings at 80%" in dental
    assert "| Plan | Cost |\n| Basic | $10 |" in dental
    assert "|------|" not in dental


def test_markdown_title_falls_back_to_first_h1_then_fallback() -> None:
    doc = parse_bytes(b"Preamble.\n\n## Sub\n\nText.\n\n# Real Title\n\nBody.", ".md", "fb")
    assert doc.title == "Real Title"
    assert doc.front_matter == {}
    assert parse_bytes(b"## Only a subheading\n\nBody text.", ".markdown", "My Doc").title == (
        "My Doc"
    )


def test_markdown_setext_headings() -> None:
    doc = parse_bytes(b"Guide\n=====\n\nIntro.\n\nDetails\n-------\n\nMore.", ".md", "fb")
    assert doc.title == "Guide"
    assert section_with(doc, "More.").heading_path == ("Guide", "Details")


@pytest.mark.parametrize(
    "source",
    [
        "---\ntitle: [unclosed\n---\nBody text.",
        "---\n- just\n- a list\n---\nBody text.",
    ],
)
def test_markdown_malformed_front_matter(source: str) -> None:
    with pytest.raises(ParseError, match=r"^invalid front matter: "):
        parse_bytes(source.encode(), ".md", "fb")


def test_markdown_headings_only_is_empty() -> None:
    with pytest.raises(ParseError, match=r"empty document \(no extractable text\)"):
        parse_bytes(b"---\ntitle: x\n---\n# Title\n\n## Sub\n", ".md", "fb")


# --------------------------------------------------------------------------------------- HTML

HTML = """<!DOCTYPE html>
<html><head><title> Travel   Policy </title><style>p { color: red }</style>
<script>var secret = "do not index";</script></head>
<body>
<header>Company intranet banner</header>
<nav><a href="/">Home</a> | <a href="/hr">HR</a></nav>
<h1>Travel</h1>
<p>Book travel   through the <b>portal</b>.<br>Approval is required.</p>
<h2>Per Diem</h2>
<ul><li>Meals: $60</li><li>Hotel: $200<ul><li>Nested detail</li></ul></li></ul>
<table><tr><th>City</th><th>Rate</th></tr><tr><td>Paris</td><td>$250</td></tr></table>
<!-- an HTML comment -->
<div>Loose text in a div.</div>
<h2>Mileage</h2>
<p>Mileage is reimbursed at the federal rate.</p>
<noscript>Enable JavaScript</noscript>
<footer>Copyright 2024</footer>
<script>trackPageView();</script>
</body></html>
"""


def test_html_structure_and_title() -> None:
    doc = parse_bytes(HTML.encode(), ".html", "fb")
    assert doc.title == "Travel Policy"
    assert doc.front_matter == {}
    intro = section_with(doc, "Book travel")
    assert intro.heading_path == ("Travel",)
    assert intro.text == "Book travel through the portal.\nApproval is required."
    per_diem = section_with(doc, "Meals")
    assert per_diem.heading_path == ("Travel", "Per Diem")
    assert "- Meals: $60\n- Hotel: $200\n- Nested detail" in per_diem.text
    assert "City | Rate\nParis | $250" in per_diem.text
    assert "Loose text in a div." in per_diem.text
    assert section_with(doc, "federal rate").heading_path == ("Travel", "Mileage")


def test_html_drops_scripts_styles_and_page_chrome() -> None:
    text = all_text(parse_bytes(HTML.encode(), ".htm", "fb"))
    for unwanted in (
        "do not index",
        "trackPageView",
        "color: red",
        "banner",
        "Home",
        "Copyright",
        "JavaScript",
        "comment",
    ):
        assert unwanted not in text


def test_html_title_falls_back_to_h1_then_fallback() -> None:
    assert parse_bytes(b"<h1>Heading One</h1><p>Body</p>", ".html", "fb").title == "Heading One"
    assert parse_bytes(b"<p>Just a paragraph</p>", ".html", "From Stem").title == "From Stem"


def test_html_with_only_script_is_empty() -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse_bytes(b"<html><script>alert(1)</script><p>   </p></html>", ".html", "fb")


# --------------------------------------------------------------------------------- plain text


def test_plain_text_paragraphs_and_title() -> None:
    text = (
        "\ufeffFirst paragraph line one\r\nline two.\r\n\r\n"
        "Second paragraph.\r\n\r\n\r\nThird paragraph."
    )
    doc = parse_bytes(text.encode("utf-8"), ".txt", "Office Hours")
    assert doc.title == "Office Hours"
    assert len(doc.sections) == 1
    assert doc.sections[0].heading_path == ()
    assert doc.sections[0].page is None
    assert doc.sections[0].text == (
        "First paragraph line one line two.\n\nSecond paragraph.\n\nThird paragraph."
    )


def test_plain_text_heading_heuristics() -> None:
    text = "Preface text.\n\nOFFICE HOURS\n\nWe open at nine.\n\nParking:\nUse level B.\n"
    doc = parse_bytes(text.encode(), ".txt", "fb")
    assert section_with(doc, "Preface").heading_path == ()
    assert section_with(doc, "nine").heading_path == ("OFFICE HOURS",)
    assert section_with(doc, "level B").heading_path == ("Parking",)
    assert "OFFICE HOURS" not in all_text(doc)


def test_plain_text_list_items_stay_on_their_own_lines() -> None:
    doc = parse_bytes(b"Bring:\n- a laptop\n- your badge\n", ".txt", "fb")
    assert doc.sections[0].text == "- a laptop\n- your badge"
    assert doc.sections[0].heading_path == ("Bring",)


# -------------------------------------------------------------------------------------- PDF


def three_page_pdf(title: str | None = None) -> bytes:
    return make_pdf(
        [
            [
                "Employee Benefits Overview",
                f"{WIDE} and the",
                "plan covers dental bene-",
                "fits for all staff.",
            ],
            [
                "Dental Coverage",
                f"{WIDE} with",
                "out-of-",
                "network care covered at a lower rate for members.",
            ],
            [f"{WIDE} so", "more text lands on the third page of the plan (see above)."],
        ],
        title=title,
    )


def test_pdf_sections_carry_one_based_pages() -> None:
    doc = parse_bytes(three_page_pdf(), ".pdf", "fb")
    assert {section.page for section in doc.sections} == {1, 2, 3}
    assert section_with(doc, "third page").page == 3
    assert section_with(doc, "lower rate").page == 2
    assert doc.front_matter == {}


def test_pdf_joins_hyphenated_line_breaks_but_keeps_compounds() -> None:
    text = all_text(parse_bytes(three_page_pdf(), ".pdf", "fb"))
    assert "dental benefits for all staff." in text
    assert "out-of-network care" in text
    assert "  " not in text


def test_pdf_heading_heuristic_spans_pages() -> None:
    doc = parse_bytes(three_page_pdf(), ".pdf", "fb")
    assert section_with(doc, "dental benefits").heading_path == ("Employee Benefits Overview",)
    assert section_with(doc, "lower rate").heading_path == ("Dental Coverage",)
    # No new heading on page 3, so the last one still applies.
    assert section_with(doc, "third page").heading_path == ("Dental Coverage",)


@pytest.mark.parametrize(
    ("meta_title", "expected"),
    [
        ("Benefits Handbook 2024", "Benefits Handbook 2024"),
        ("Microsoft Word - handbook_v3.docx", "Employee Benefits Overview"),
        ("   ", "Employee Benefits Overview"),
        (None, "Employee Benefits Overview"),
    ],
)
def test_pdf_title(meta_title: str | None, expected: str) -> None:
    assert parse_bytes(three_page_pdf(meta_title), ".pdf", "fb").title == expected


def test_pdf_cover_page_lines_form_the_title() -> None:
    pdf = make_pdf([["Zava", "Employee Handbook"], [f"{WIDE}.", "Second line of body."]])
    assert parse_bytes(pdf, ".pdf", "fb").title == "Zava Employee Handbook"


def test_pdf_title_falls_back_when_first_line_is_long() -> None:
    pdf = make_pdf([[WIDE + " " + WIDE, "Body."]])
    assert parse_bytes(pdf, ".pdf", "Fallback Name").title == "Fallback Name"


@pytest.mark.parametrize("cut", [0.5, 0.25, 40])
def test_truncated_pdf_is_corrupt(cut: float) -> None:
    data = three_page_pdf()
    size = int(len(data) * cut) if cut < 1 else int(cut)
    with pytest.raises(ParseError) as info:
        parse_bytes(data[:size], ".pdf", "fb")
    assert str(info.value) == "corrupt or unreadable PDF"


def test_non_pdf_bytes_with_pdf_suffix_are_corrupt() -> None:
    with pytest.raises(ParseError, match=r"^corrupt or unreadable PDF$"):
        parse_bytes(b"this is not a pdf at all", ".pdf", "fb")


def test_encrypted_pdf_needing_a_password_is_unreadable() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(three_page_pdf())))
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(ParseError, match=r"^corrupt or unreadable PDF$"):
        parse_bytes(buffer.getvalue(), ".pdf", "fb")


def test_pdf_with_only_an_owner_password_still_opens() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(three_page_pdf())))
    writer.encrypt("", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert "third page" in all_text(parse_bytes(buffer.getvalue(), ".pdf", "fb"))


def test_pdf_without_text_is_empty() -> None:
    with pytest.raises(ParseError, match=r"empty document \(no extractable text\)"):
        parse_bytes(make_pdf([[], []]), ".pdf", "fb")


def test_pypdf_warnings_are_silenced(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pypdf")
    before = logger.level
    # A wrong startxref pointer is repaired by pypdf, which then logs warnings about it.
    broken = re.sub(rb"startxref\n\d+", b"startxref\n5", three_page_pdf())
    with caplog.at_level(logging.DEBUG):
        doc = parse_bytes(broken, ".pdf", "fb")
    assert {section.page for section in doc.sections} == {1, 2, 3}
    assert not [record for record in caplog.records if record.name.startswith("pypdf")]
    assert logger.level == before


# ------------------------------------------------------------------------ errors and files


def test_binary_file_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"^binary file$"):
        parse_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ".txt", "fb")


def test_invalid_utf8_is_rejected() -> None:
    with pytest.raises(ParseError, match=r"^not valid UTF-8 text$"):
        parse_bytes("café menu".encode("latin-1"), ".md", "fb")


@pytest.mark.parametrize("suffix", sorted(SUPPORTED_SUFFIXES))
@pytest.mark.parametrize("data", [b"", b"  \n\t\n"])
def test_empty_input_is_rejected(suffix: str, data: bytes) -> None:
    with pytest.raises(ParseError, match=r"^empty document \(no extractable text\)$"):
        parse_bytes(data, suffix, "fb")


@pytest.mark.parametrize(("suffix", "shown"), [(".docx", ".docx"), ("DOCX", ".docx"), ("", "")])
def test_unsupported_suffix(suffix: str, shown: str) -> None:
    with pytest.raises(ParseError, match=r"^unsupported file type") as info:
        parse_bytes(b"PK\x03\x04", suffix, "fb")
    assert shown in str(info.value)


def test_suffix_is_case_insensitive() -> None:
    assert parse_bytes(b"# T\n\nBody.", ".MD", "fb").title == "T"


def test_parse_file_uses_stem_as_fallback_title(tmp_path: Path) -> None:
    path = tmp_path / "employee_handbook-2024.txt"
    path.write_text("Some body text.\n", encoding="utf-8")
    doc = parse_file(path)
    assert doc.title == "employee handbook 2024"
    assert doc.sections == (Section("Some body text.", None, ()),)


def test_parse_file_reads_pdf(tmp_path: Path) -> None:
    path = tmp_path / "plan.pdf"
    path.write_bytes(three_page_pdf())
    assert parse_file(path).title == "Employee Benefits Overview"


def test_parse_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"^unsupported file type \.docx$"):
        parse_file(tmp_path / "report.docx")
    with pytest.raises(ParseError, match=r"^cannot read file"):
        parse_file(tmp_path / "missing.md")


def test_results_are_immutable() -> None:
    doc = parse_bytes(MARKDOWN.encode(), ".md", "fb")
    with pytest.raises(AttributeError):
        doc.title = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        doc.front_matter["owner"] = "it"  # type: ignore[index]


def test_pdf_number_broken_after_its_hyphen_is_rejoined() -> None:
    from core.ingest.parsing import _join_wrapped

    assert _join_wrapped("call the Compliance Hotline at 1-", "800-555-1212.", frozenset()) == (
        "call the Compliance Hotline at 1-800-555-1212."
    )
    assert _join_wrapped("pages 10-", "12 apply", frozenset()) == "pages 10-12 apply"
    assert _join_wrapped("a well-", "known fact", frozenset({"well-known"})) == "a well-known fact"
