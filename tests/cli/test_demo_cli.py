"""``mes demo --no-serve`` sets up a hub with users for every role and the example recipes."""

from __future__ import annotations

from cli_helpers import run_bare


def test_the_demo_sets_up_users_and_recipes_at_each_lifecycle_stage(tmp_path):
    folder = tmp_path / "demo"
    result = run_bare("demo", "--dir", str(folder), "--no-serve")
    assert result.returncode == 0, result.stderr
    assert "aaron      write-the-recipe       author" in result.stdout
    assert "  CART-CD19-FRESH v1   effective" in result.stdout
    assert "  CART-CD19-CRYO v1    in review" in result.stdout
    assert "  MRNA-NEOAG-FILL v1   draft" in result.stdout
    listing = run_bare("--instance", str(folder), "recipe", "list")
    assert [line.split("\t")[:2] for line in listing.stdout.splitlines()][:1] == [
        ["CART-CD19-CRYO v1", "In review"]
    ]
    assert "CART-CD19-FRESH v1\tEffective from " in listing.stdout
    verified = run_bare("--instance", str(folder), "audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok: ")
