"""``mes network cpv-scan``: the hub keeps the new trends for QA, from the command line."""

from __future__ import annotations


def test_the_scan_reports_how_many_new_trends_it_kept(instance):
    assert instance.init().code == 0
    result = instance.run("network", "cpv-scan")
    assert (result.code, result.out.strip(), result.err) == (0, "ok: 0 new trends to assess.", "")
    only = instance.run("network", "cpv-scan", "--recipe", "CART-CD19")
    assert only.out.strip() == "ok: 0 new trends to assess."
