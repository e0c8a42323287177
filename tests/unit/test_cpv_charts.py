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
    assert "Specification (action limits): at least 70 %." in said  # the page's words
    from dataclasses import replace

    both = chart_summary(replace(view(), spec_low=2.0, spec_high=8.0, unit="°C"))
    assert "Specification (action limits): 2 to 8 °C." in both
    assert "at most 8 °C." in chart_summary(
        replace(view(), spec_low=None, spec_high=8.0, unit="°C")
    )
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


def _long_view(count: int = 60):
    """A print-sized series (batch numbers not drawn) whose last point is a signal's."""
    from dataclasses import replace

    values = [91.0 + (i % 7) * 0.3 for i in range(count - 1)] + [99.0]
    numbers = [f"SPK1-2026-{i:04d}" for i in range(count)]
    points = [
        SeriesPoint("SPK1", n, f"id-{i}", v, f"2026-03-01T08:00:{i % 60:02d}.000000Z", 1)
        for i, (n, v) in enumerate(zip(numbers, values, strict=True))
    ]
    signal = SignalView("network", Rule.BEYOND_3_SIGMA, "above", (numbers[-1],), "id", "…")
    return replace(view(), points=points, limits=imr_limits(values[:-1]), signals=[signal])


def test_in_print_the_points_of_a_signal_are_ringed_and_the_points_legible():
    """Walk: in the PDF the points were 2 pt dots and the rings were missing."""
    from mes.services.charts import PRINT_RASTER_FROM

    svg = control_chart_svg(_long_view(), raster_from=PRINT_RASTER_FROM)
    assert 'id="points"' not in svg  # drawn by matplotlib, as for the PDF
    rings = re.findall(r"<use [^>]*fill-opacity: 0; stroke: #d50000; stroke-width: 1.4", svg)
    assert len(rings) == 1  # the ring of the one point of the signal, drawn as a vector


def test_a_far_specification_limit_is_said_at_the_edge_not_drawn_by_stretching_the_scale():
    """Walk: LSL 70 % with data at 90-99 % squashed the points into the top tenth."""
    svg = control_chart_svg(view())  # spec low 70, data 90-99, control limits around 91
    assert "Spec low 70 % ↓ below the chart" in svg
    assert "Spec low 70<" not in svg  # no line at 70
    ticks = re.findall(r'<g id="ytick_\d+">.*?>(\d+(?:\.\d+)?)</text>', svg, re.S)
    assert ticks and "90" in ticks and "70" not in ticks and "80" not in ticks  # data's scale
    from dataclasses import replace

    near = control_chart_svg(replace(view(), spec_low=89.0))
    assert "Spec low 89" in near and "below the chart" not in near


def test_batch_numbers_stay_inside_the_axes_or_are_dropped():
    """Walk: the slanted batch numbers of points near the top ran over the chart's title."""
    from mes.services.charts import _label

    inside = (50.0, 40.0, 600.0, 260.0)  # left, top, right, bottom
    assert "rotate(-40 " in _label("SPK4-2026-0008", 100.0, 200.0, 4.0, inside)  # above right
    near_top = _label("SPK4-2026-0008", 100.0, 45.0, 4.0, inside)
    assert near_top and "rotate(40 " in near_top and 'text-anchor="start"' in near_top  # below
    corner = _label("SPK4-2026-0008", 598.0, 45.0, 4.0, inside)
    assert 'text-anchor="end"' in corner  # below left, away from the limits' names
    assert _label("SPK4-2026-0008", 100.0, 45.0, 4.0, (50.0, 40.0, 600.0, 60.0)) == ""
    svg = control_chart_svg(view())
    for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" font-size="7"', svg):
        assert float(y) > 40  # none up in the title's row


def test_the_chart_writes_dates_as_the_site_does():
    from functools import partial

    from mes.core.dates import site_date_text

    svg = control_chart_svg(view(), day=partial(site_date_text, time_zone="Europe/London"))
    assert "SPK1-2026-0000 · SPK1 · 91.2 % · 01/03/2026" in svg and "2026-03-01" not in svg
    assert site_date_text("2026-06-01", "Europe/London") == "01/06/2026"
    assert site_date_text("2026-05-31T23:30:00Z", "Europe/London") == "01/06/2026"  # BST


def test_a_label_given_to_several_critical_numbers_is_told_apart_by_the_phase_name():
    from mes.services.cpv import parameter_titles

    labels = {
        ("receipt_check.viability", "%"): "Viability",
        ("harvest_count.viability", "%"): "Viability",
        ("harvest_count.dose", ""): "Dose",
    }
    specs = {
        ("receipt_check.viability", "%"): ("Viability", "CQA", 70.0, None, "Receipt at the spoke"),
        ("harvest_count.viability", "%"): ("Viability", "CQA", 70.0, None, "Harvest"),
    }
    assert parameter_titles(labels, specs) == [
        ("receipt_check.viability|%", "Viability (%) — Receipt at the spoke"),
        ("harvest_count.viability|%", "Viability (%) — Harvest"),
        ("harvest_count.dose|", "Dose"),
    ]
    # without the recipe at the hub, the phase ID in words
    assert parameter_titles(labels, {})[1] == (
        "harvest_count.viability|%",
        "Viability (%) — harvest count",
    )
