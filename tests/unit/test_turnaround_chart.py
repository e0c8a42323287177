"""The turnaround chart: an SVG element with every site, the network, the legs and the target."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from test_turnaround import BATCHES

from mes.core.critical import Leg, Turnaround
from mes.core.turnaround import turnaround
from mes.services.turnaround_chart import turnaround_chart_svg

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    return [t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_the_chart_names_each_site_the_network_each_leg_and_the_target():
    stats = turnaround("CART", BATCHES, Turnaround(300.0, (Leg("collection_end", "receipt", 24),)))
    svg = turnaround_chart_svg(stats)
    assert svg.startswith("<svg") and "<?xml" not in svg
    words = texts(svg)
    for expected in ("SPK1", "SPK2", "Network", "target 12.5 days", "Receipt at the spoke",
                     "Manufacturing complete", "Released by the hub"):  # fmt: skip
        assert expected in words, (expected, words)
    assert any(w.startswith("days from collection end") for w in words)


def test_the_same_figures_draw_the_same_chart_and_new_figures_a_new_one():
    stats = turnaround("CART", BATCHES)
    first = turnaround_chart_svg(stats)
    assert turnaround_chart_svg(turnaround("CART", BATCHES)) == first
    fewer = turnaround_chart_svg(turnaround("CART", BATCHES[:3]))
    assert fewer != first and "SPK2" not in texts(fewer)


def test_a_dollar_in_a_site_code_is_drawn_as_text_not_as_maths():
    from dataclasses import replace

    odd = [replace(b, site="S$\\frac$") if b.site == "SPK2" else b for b in BATCHES]
    svg = turnaround_chart_svg(turnaround("CART", odd))
    assert "S$\\frac$" in texts(svg)
