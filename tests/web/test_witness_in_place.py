"""A witness signs in place through the real app: the signature dialog's "Sign as another person"
on the operator's pages, and the web's action boundary (``act``) that runs the same service with
the witness as the acting user, leaving the logged-in operator's session as it was (issue 15)."""

from __future__ import annotations

from batch_helpers import DIN_BARCODE, PATIENT, SCANNER
from spoke_pages import app, browser, site
from support import PASSWORD
from web_helpers import (
    alerts,
    location,
    lock,
    logged_in_user,
    post_form,
    session_token_of,
    text,
)

from mes.services import sessions

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)


def witness_form(username: str = "sam", password: str = PASSWORD) -> dict[str, str]:
    return {"esign_witness": "y", "esign_username": username, "esign_password": password}


def performed_by_olivia(app, site):
    """Olivia, logged in, performed the bag check of a new batch; her browser and its page."""
    olivia = browser(app, site, "olivia")
    batch_id = site.start().state.id
    url = f"/batches/{batch_id}/phases/check_bag"
    post_form(olivia, f"{url}/start", {}, page=url)
    answer = post_form(
        olivia, f"{url}/sign/perform",
        {"value:bag_intact": "yes", "equipment:0": SCANNER, "identity:bag_din": DIN_BARCODE,
         "identity:bag_patient": PATIENT, "esign_username": "olivia", "esign_password": PASSWORD},
        page=url,
    )  # fmt: skip
    assert answer.status_code == 303, alerts(answer)
    return olivia, batch_id, url


def signed_in_session(client) -> bool:
    with client.application.extensions["mes"].uow(read_only=True) as uow:
        return sessions.find_session(uow, session_token_of(client)).signed


def test_the_verify_button_sits_in_the_sticky_bar_and_offers_only_a_witness_to_the_performer(
    app, site
):
    olivia, _batch_id, url = performed_by_olivia(app, site)
    page = olivia.get(url).get_data(as_text=True)
    bar = page.split('id="signing-bar"')[1]
    assert "sticky-actions" in page.split('id="signing-bar"')[0].rsplit("<div", 1)[1]
    assert 'data-witness="only"' in bar and 'name="esign_witness" value="y"' in bar
    assert 'name="esign_username"' in bar  # the witness always types their user ID
    assert "witness.js" in page


def test_a_supervisor_verifies_at_the_operators_panel_and_the_operator_stays_logged_in(app, site):
    olivia, batch_id, url = performed_by_olivia(app, site)
    assert signed_in_session(olivia)  # olivia signed "performed" in this session
    answer = post_form(olivia, f"{url}/sign/verify", witness_form(), page=url)
    assert answer.status_code == 303, alerts(answer)
    assert logged_in_user(olivia) == site.ids["olivia"]
    assert signed_in_session(olivia)  # unchanged by the witness
    assert "Sam Tester (sam) — Verified" in text(olivia.get(url))
    record = text(olivia.get(f"/batches/{batch_id}/record"))
    assert "Sam Tester (sam) as a witness at the session of Olivia Tester (olivia)" in record


def test_a_witness_signature_does_not_count_as_the_logged_in_users_signing(app, site):
    _olivia, _batch_id, url = performed_by_olivia(app, site)
    oscar = browser(app, site, "oscar")  # another operator at the panel, who has not signed yet
    assert not signed_in_session(oscar)
    answer = post_form(oscar, f"{url}/sign/verify", witness_form(), page=url)
    assert answer.status_code == 303, alerts(answer)
    assert not signed_in_session(oscar)  # his first signature still takes user ID + password


def test_a_wrong_witness_password_is_refused_on_the_page_and_the_operator_stays_logged_in(
    app, site
):
    olivia, _batch_id, url = performed_by_olivia(app, site)
    answer = post_form(olivia, f"{url}/sign/verify", witness_form(password="wrong"), page=url)
    assert answer.status_code == 401
    assert any("The user ID or password is wrong." in a for a in alerts(answer))
    assert logged_in_user(olivia) == site.ids["olivia"]
    for _ in range(4):
        post_form(olivia, f"{url}/sign/verify", witness_form(password="wrong"), page=url)
    assert logged_in_user(olivia) == site.ids["olivia"]  # sam is locked, not olivia
    answer = post_form(olivia, f"{url}/sign/verify", witness_form(), page=url)
    assert any("The account sam is locked." in a for a in alerts(answer))


def test_the_operator_cannot_be_their_own_witness(app, site):
    olivia, _batch_id, url = performed_by_olivia(app, site)
    answer = post_form(olivia, f"{url}/sign/verify", witness_form("olivia"), page=url)
    assert answer.status_code == 400
    assert any("a witness is another person" in a for a in alerts(answer))


def test_a_locked_panel_is_unlocked_by_its_user_and_the_witness_types_their_password_once(
    app, site
):
    """Item 9 of issue 15: the supervisor no longer logs in at the panel, so no session of theirs
    locks between turns; the lock stays the logged-in user's, and a witness never signs past it."""
    olivia, batch_id, url = performed_by_olivia(app, site)
    lock(olivia, url)  # as the page's idle timer does
    locked_page = f"/unlock?next={url}"  # the form of the page left open on the panel
    answer = post_form(olivia, f"{url}/sign/verify", witness_form(), page=locked_page)
    assert location(answer).startswith("/unlock?")  # nothing signed behind the lock
    assert site.view(batch_id).batch.state.phases["check_bag"].verified_by is None
    unlocked = post_form(olivia, "/unlock", {"password": PASSWORD, "next": url}, page=locked_page)
    assert location(unlocked) == url
    answer = post_form(olivia, f"{url}/sign/verify", witness_form(), page=url)
    assert answer.status_code == 303, alerts(answer)
    assert site.view(batch_id).batch.state.phases["check_bag"].verified_by.username == "sam"
