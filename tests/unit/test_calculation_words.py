"""A calculation in words (issue 15, item 13): the values it reads by their labels, not its formula."""

from __future__ import annotations

from mes.core.phases.calculations import calculation_words

LABELS = {
    "count.tnc_conc": "TNC concentration",
    "count.bag_volume": "Bag volume",
    "apheresis.tnc_total": "Total nucleated cells in the bag",
    "count.viability": "Viability",
}


def label(name: str) -> str:
    return LABELS.get(name if "." in name else f"count.{name}", name)


def test_a_calculation_names_the_values_it_reads_by_their_labels_in_order_of_use():
    words = calculation_words("round(tnc_conc * bag_volume / 1000, 2)", 2, label)
    assert words == "Worked out from TNC concentration and Bag volume, to 2 decimals."
    assert "tnc_conc" not in words and "round(" not in words


def test_values_of_another_phase_are_named_by_their_label_too():
    words = calculation_words("apheresis.tnc_total * viability / 100", None, label)
    assert words == "Worked out from Total nucleated cells in the bag and Viability."


def test_one_value_three_values_and_one_decimal_read_as_a_sentence():
    assert calculation_words("bag_volume / 1000", 1, label) == (
        "Worked out from Bag volume, to 1 decimal."
    )
    assert calculation_words("tnc_conc * bag_volume * viability", None, label) == (
        "Worked out from TNC concentration, Bag volume and Viability."
    )
