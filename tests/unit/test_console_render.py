"""What the console draws: the chat preview escapes whatever a model or a document wrote,
and the server-side charts handle gaps and empty ranges."""

from __future__ import annotations

from bot.console.charts import Series, line_chart, nice_ceiling, waterfall
from bot.console.chat_preview import answer_html, mrkdwn_html
from core.answering.types import Answer, Citation, Mode, Notice


def test_model_text_cannot_inject_markup() -> None:
    answer = Answer(
        request_id="abc123",
        mode=Mode.ANSWER,
        text="<script>alert(1)</script> **Passes** last [24 hours](javascript:alert(1)) [1]"
        " and <img src=x onerror=alert(2)>",
        citations=[Citation(1, "c1", "it/wifi.md", "Wi-Fi <b>guide</b>", "it/wifi.md", None)],
        notices=[Notice("extractive_only", "Quoted <i>passages</i>.")],
    )
    html = str(answer_html(answer))
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html
    assert "<strong>Passes</strong>" in html
    assert "Wi-Fi &lt;b&gt;guide&lt;/b&gt;" in html
    assert "⚠️ Quoted &lt;i&gt;passages&lt;/i&gt;." in html
    assert "request <code>abc123</code>" in html  # the chat footer
    assert html.count("<button") == 3  # 👍 👎 Talk to a human, inert


def test_links_and_code() -> None:
    html = str(mrkdwn_html("See <https://example.com/a?b=1&amp;c=2|the *page*> and `x < y`"))
    assert '<a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer">' in html
    assert "the <strong>page</strong></a>" in html
    assert "<code>x &lt; y</code>" in html


def test_chart_axis_gaps_and_empty_ranges() -> None:
    assert [nice_ceiling(v) for v in (0, 0.7, 3, 8.1, 120)] == [1.0, 1.0, 5, 10, 200]
    chart = str(line_chart("p95", ["a", "b", "c", "d"], [Series("p95", [1.0, None, 2.0, 3.0])]))
    assert chart.count("<polyline") == 1  # the gap splits the line; a lone point has none
    assert chart.count("<circle") == 3
    empty = str(line_chart("p95", ["a", "b"], [Series("p95", [None, None])]))
    assert "no requests in this range" in empty
    legend = str(line_chart("by platform", ["a"], [Series("slack", [1]), Series("teams", [2])]))
    assert "slack" in legend and "teams" in legend
    bars = str(waterfall([("policy", 0.0, 0.1), ("retrieval", 0.2, 5.0)], 6.0))
    assert bars.count("<rect") == 2 and "retrieval: 5.0 ms from 0.2 ms" in bars


def test_chart_titles_are_escaped() -> None:
    chart = str(line_chart("<b>x</b>", ["<i>"], [Series("<s>", [1.0])]))
    assert "<b>" not in chart and "<i>" not in chart and "<s>" not in chart
