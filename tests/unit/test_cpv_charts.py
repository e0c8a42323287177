"""The CPV control chart as SVG: deterministic, safe to show, its points linked and titled."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mes.core.cpv import Rule, imr_limits
from mes.services.charts import control_chart_svg
from mes.services.cpv import ParameterView, SeriesPoint, SignalView, chart_summary

VALUES = [91.2, 90.4, 91.8, 90.9, 91.5, 90.2, 91.1, 92.0, 90.7, 99.0]


def view(numbers: list[str] | None = None) -> ParameterView:
    numbers = numbers or [f"SPK{1 + i % 2}-2026-{i:04d}" for i in range(len(VALUES))]
    points = [
        SeriesPoint(f"SPK{1 + i % 2}", n, f"id-{i}", v, f"2026-03-{i + 1:02d}T08:00:00.000000Z", 1)
        for i, (n, v) in enumerate(zip(numbers, VALUES, strict=True))
    ]
    limits = imr_limits(VALUES[:9])
    signal = SignalView(
        "network", Rule.BEYOND_3_SIGMA, "above", (numbers[-1],), "id-9", "Network: …"
    )
    return ParameterView(
        "harvest.viability", "%", "Viability at harvest", "Critical quality attribute", 70.0, None,
        points, limits, None, None, None, [signal], [], [], ["SPK1", "SPK2"],
    )  # fmt: skip


def test_the_same_data_give_the_same_svg_bytes():
    assert control_chart_svg(view()) == control_chart_svg(view())


def test_batch_numbers_and_links_are_escaped_so_the_svg_is_safe_to_show():
    hostile = [f"N{i}" for i in range(9)] + ['<script>alert(1)</script>"&']
    svg = control_chart_svg(view(hostile), link=lambda p: f'/qa/batches/{p.batch_id}?x="1"&y=<2>')
    assert "<script" not in svg
    ET.fromstring(svg)  # well-formed XML: nothing broke out of a text or an attribute
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg


def test_each_point_links_to_its_record_with_a_hover_title_and_the_signal_is_ringed():
    svg = control_chart_svg(view(), link=lambda p: f"/qa/batches/{p.batch_id}")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    links = root.findall(".//s:g[@id='points']/s:a", ns)
    assert [a.get("href") for a in links] == [f"/qa/batches/id-{i}" for i in range(len(VALUES))]
    titles = [t.text for t in root.findall(".//s:g[@id='points']//s:title", ns)]
    assert titles[0] == "SPK1-2026-0000 · SPK1 · 91.2 % · 2026-03-01"
    assert len(re.findall(r'fill="none" stroke="#d50000"', svg)) == 1  # the one point of the signal
    assert 'width="100%"' in svg and "viewBox" in svg  # scales to the page's width


def test_without_links_the_chart_is_fit_for_print():
    assert "<a " not in control_chart_svg(view())


def test_the_summary_says_what_the_chart_shows():
    said = chart_summary(view())
    assert "10 batches of every site from SPK1-2026-0000 to SPK2-2026-0009" in said
    assert "Specification (action limits): low 70" in said
    assert "1 signal: Network: …" in said


def test_a_dollar_in_the_label_or_unit_is_drawn_as_text_not_as_maths():
    """Review: matplotlib read 'IL-6 $\\frac$ pg' as TeX and raised (a 500, no report)."""
    from dataclasses import replace

    odd = replace(view(), label="IL-6 $\\frac$ pg", unit="$pg/mL$")
    svg = control_chart_svg(odd)
    ET.fromstring(svg)
    assert "IL-6 $\\frac$ pg" in svg and "$pg/mL$" in svg


def test_for_two_of_three_only_the_points_beyond_two_sigma_are_ringed():
    from dataclasses import replace

    base = view()
    numbers = [p.number for p in base.points]
    signal = SignalView(
        "network", Rule.TWO_OF_THREE_BEYOND_2, "above", tuple(numbers[-3:]), "id-7", "Network: …",
        marked=(numbers[-3], numbers[-1]),
    )  # fmt: skip
    svg = control_chart_svg(replace(base, signals=[signal]))
    assert len(re.findall(r'fill="none" stroke="#d50000"', svg)) == 2  # not the middle one
