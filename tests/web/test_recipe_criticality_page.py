"""The master recipe page shows what the recipe marks critical, the milestones it records and
its turnaround target: in a part of its own (linked from the contents) and beside each value."""

from __future__ import annotations

import re

from test_recipe_pages import recipe_text, uploaded
from web_helpers import login, text


def critical_recipe() -> str:
    source = recipe_text()
    edits = [
        ("action_low: 80}", "action_low: 80, criticality: cqa}"),
        ("unit: L, action_high: 1}", "unit: L, action_high: 1, criticality: cpp}"),
        (
            "- {id: volume, label: Volume, type: number, unit: mL}",
            "- {id: volume, label: Volume, type: number, unit: mL, criticality: ipc}\n"
            "              - {id: received_at, label: Bag received, type: datetime, "
            "milestone: receipt}",
        ),
        (
            "expected_duration: 2 d\n",
            "expected_duration: 2 d\nturnaround:\n  target_hours: 336\n  legs:\n"
            "    - {from: receipt, to: 'up:receipt', target_hours: 12}\n",
        ),
    ]
    for old, new in edits:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    return source


def _words(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_critical_parameters_and_the_turnaround_have_their_part(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    page = text(client.get(f"/recipes/{uploaded(client, critical_recipe())}"))
    contents = page.split('<nav class="card recipe-part contents"', 1)[1].split("</nav>", 1)[0]
    assert '<a href="#critical">Critical parameters and turnaround</a>' in contents
    part = page.split('<section class="card recipe-part" id="critical">', 1)[1]
    part = part.split("</section>", 1)[0]
    rows = [_words(row) for row in re.findall(r"<tr>(.*?)</tr>", part, re.S)]
    assert rows == [
        "Parameter Phase Criticality Unit Key",
        "Viability Scan the bag CQA Critical quality attribute % scan_bag.viability",
        "Volume Scan the bag IPC In-process control mL scan_bag.volume",
        "Volume in litres Scan the bag CPP Critical process parameter L scan_bag.volume_l",
    ]
    assert "Receipt at the spoke: Bag received" in _words(part)
    assert "Vein to vein: 336 h" in _words(part)
    assert "Receipt at the spoke → End of Receipt: 12 h" in _words(part)
    received = re.search(r"<tr>\s*<td>Bag received.*?</tr>", page, re.S).group(0)
    assert "Milestone: Receipt at the spoke" in _words(received)
    assert "Turnaround target 336 h vein to vein" in _words(page)
    viability = re.search(r"<tr>\s*<td>Viability.*?</tr>", page, re.S).group(0)
    assert 'title="Critical quality attribute">CQA</span>' in viability


def test_a_recipe_without_them_has_no_such_part(client, create_user):
    create_user("aaron", roles=["author"])
    login(client, "aaron")
    page = text(client.get(f"/recipes/{uploaded(client, recipe_text())}"))
    assert 'id="critical"' not in page and "Milestone:" not in page
