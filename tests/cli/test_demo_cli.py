"""``mes demo --no-serve`` sets up a hub and a spoke: recipes approved at the hub, installed at
the spoke from signed bundles, people trained, materials and equipment registered."""

from __future__ import annotations

from cli_helpers import run_bare


def test_the_demo_sets_up_a_hub_and_a_spoke_with_installed_recipes_and_masters(tmp_path):
    folder = tmp_path / "demo"
    result = run_bare("demo", "--dir", str(folder), "--no-serve")
    assert result.returncode == 0, result.stderr
    # Each person's user ID, password, badge code and PIN (21 CFR 11.200(a)(1): either pair).
    assert "olivia     cells-in-the-hood      BADGE-10005   851427   operator" in result.stdout
    assert "aaron      write-the-recipe       BADGE-10002   517394   author" in result.stdout
    assert "  CART-CD19-FRESH-DEMO v1  " in result.stdout
    # The guide: the date of birth in the site's order; a witness signs at olivia's panel.
    assert "a date of birth (DD/MM/YYYY, e.g. 17/05/1970)." in result.stdout
    assert "ticks 'Sign as another person' and scans his own badge + PIN" in result.stdout
    hub_list = run_bare("--instance", str(folder / "hub"), "recipe", "list")
    for code in ("CART-CD19-FRESH", "CART-CD19-CRYO", "MRNA-NEOAG-FILL", "CART-CD19-FRESH-DEMO"):
        assert f"{code} v1\tEffective from " in hub_list.stdout
    spoke_list = run_bare("--instance", str(folder / "spoke"), "recipe", "list")
    assert spoke_list.returncode == 0, spoke_list.stderr
    assert spoke_list.stdout.count(" v1") == 4
    for site in ("hub", "spoke"):
        verified = run_bare("--instance", str(folder / site), "audit", "verify")
        assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stderr
