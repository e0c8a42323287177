"""A ready phase shows its entry form beside "Start this phase", and its first scan starts it
(issue 15), on both databases: the plain form and the page's script (``Accept:
application/json``), whose answer carries the phase's new status."""

from __future__ import annotations

from batch_helpers import DIN, SCANNER
from spoke_pages import app, browser, site, start_batch
from web_helpers import post_form, text

from mes.core.identity import mod37_2
from mes.services import batches

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)

JSON = {"Accept": "application/json"}


def new_batch(client) -> tuple[str, str]:
    """A new batch, its first phase ready: (batch ID, the phase's URL)."""
    batch_id = start_batch(client, din=f"{DIN} 00 {mod37_2(DIN)}")
    return batch_id, f"/batches/{batch_id}/phases/check_bag"


def kinds(site, batch_id: str) -> list[str]:
    with site.uow() as uow:
        return [e.body["kind"] for e in batches.ledger_entries(uow, site.ctx("olivia"), batch_id)]


def test_a_ready_phase_shows_its_entry_form_beside_the_start_button(app, site):
    olivia = browser(app, site)
    _, url = new_batch(olivia)
    page = text(olivia.get(url))
    assert "Start this phase" in page
    assert "Your first scan or value below starts this phase" in page
    assert f'action="{url}/record"' in page and "data-scan-form" in page
    assert 'name="equipment:0"' in page and 'name="identity:bag_din"' in page
    assert "Sign performed" in page


def test_a_ready_phase_the_viewer_may_not_start_shows_no_form(app, site):
    quinn = browser(app, site, "quinn")
    olivia = browser(app, site)
    _, url = new_batch(olivia)
    page = text(quinn.get(url))
    assert "Start this phase" not in page and f'action="{url}/record"' not in page
    assert "you need the operator role" in page


def test_the_first_scan_on_a_ready_phase_starts_it_and_the_answer_says_in_progress(app, site):
    olivia = browser(app, site)
    batch_id, url = new_batch(olivia)
    answer = post_form(olivia, f"{url}/record", {"equipment:0": SCANNER}, page=url, headers=JSON)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["ok"] is True and body["recorded"] == 2  # the start and the scan
    assert (body["status"], body["status_title"]) == ("in_progress", "In progress")
    assert 'data-phase-status="in_progress"' in body["page"]
    assert 'data-live="start"' not in body["page"]  # the script removes the Start button
    assert kinds(site, batch_id)[-2:] == ["phase_started", "equipment_used"]
    assert "Start this phase" not in text(olivia.get(url))


def test_a_plain_save_on_a_ready_phase_starts_it(app, site):
    olivia = browser(app, site)
    batch_id, url = new_batch(olivia)
    saved = post_form(olivia, f"{url}/record", {"value:bag_intact": "yes"}, page=url)
    assert saved.status_code == 303
    assert kinds(site, batch_id)[-2:] == ["phase_started", "value_recorded"]


def test_a_ready_phase_with_a_timer_says_its_timer_counts_to_its_start(app, site):
    olivia = browser(app, site)
    batch_id = site.start().state.id  # at the tests' fixed time: the page's clock is later
    site.do_check_bag(batch_id)
    site.do_count(batch_id)
    site.do_culture(batch_id)
    page = text(olivia.get(f"/batches/{batch_id}/phases/harvest"))
    assert "Its timer counts to the start of this phase: start it now" in page
    assert '<button type="submit" class="big">Start this phase</button>' in page  # not muted
    assert 'name="value:harvested"' in page
