"""``mes network cpv-scan``: the hub keeps the new trends for QA, from the command line."""

from __future__ import annotations


def test_the_scan_reports_how_many_new_trends_it_kept(instance):
    assert instance.init().code == 0
    result = instance.run("network", "cpv-scan")
    assert (result.code, result.out.strip(), result.err) == (0, "ok: 0 new trends to assess.", "")


def test_an_unknown_recipe_is_refused_in_one_line(instance):
    assert instance.init().code == 0
    result = instance.run("network", "cpv-scan", "--recipe", "NOPE")
    assert result.code == 1 and "'NOPE'" in result.err and "ok" not in result.out
    assert len(result.err.strip().splitlines()) == 1
