"""What binds an issued record's two chains to each other and to the hub that issued it.

The keys inside the embedded document are trusted because the hub's PDF signature covers them;
so ``mes verify`` also checks that the review chain is the issuing hub's (never the batch's own
site's), and that a decision was made on exactly the ledger embedded beside it.
"""

from __future__ import annotations

import json
from typing import Any

from signed_record_helpers import BATCH_ID, record_document

from mes.core.canonical import canonical_json, content_hash
from mes.core.keys import SiteKey
from mes.core.ledger import GENESIS, seal
from mes.pdf.verify import check_record, issuer_site

SPOKE_KEY, HUB_KEY = SiteKey.generate(), SiteKey.generate()


def review_chain(key: SiteKey, site: str, head: list[Any]) -> list[dict[str, Any]]:
    """One entry: the batch released on the record up to ``head`` (seq, hash)."""
    body = {
        "batch": BATCH_ID, "seq": 1, "prev": GENESIS, "at": "2026-11-25T12:00:00.000000Z",
        "site": site, "terminal": "QA desk",
        "actor": {"user_id": None, "username": "quinn", "name": "Quinn Quality"},
        "kind": "batch_released",
        "payload": {"decision": "released", "reason": None, "record": {"record_head": head},
                    "manifestation": {}},
    }  # fmt: skip
    sealed = seal(body, key)
    return [{"body": sealed.body, "hash": sealed.hash, "signature": sealed.signature}]


def with_review(review: list[dict[str, Any]]) -> bytes:
    document = json.loads(record_document(SPOKE_KEY, HUB_KEY))
    document.pop("record_hash")
    document["review"] = review
    return canonical_json({**document, "record_hash": content_hash(document)})


def ledger_head() -> list[Any]:
    ledger = json.loads(record_document(SPOKE_KEY, HUB_KEY))["ledger"]
    return [ledger[-1]["body"]["seq"], ledger[-1]["hash"]]


def test_a_release_made_on_the_embedded_ledger_by_the_issuing_hub_binds():
    check = check_record(with_review(review_chain(HUB_KEY, "HUB", ledger_head())), "HUB")
    assert check.problems == ()


def test_a_review_chain_sealed_with_the_spokes_own_key_is_refused():
    check = check_record(with_review(review_chain(SPOKE_KEY, "SPK1", ledger_head())), "HUB")
    assert any("a review is the hub's" in p for p in check.problems), check.problems


def test_a_review_by_another_hub_than_the_issuer_is_named():
    check = check_record(with_review(review_chain(HUB_KEY, "HUB", ledger_head())), "HUB2")
    assert any("issued by hub HUB2" in p for p in check.problems), check.problems


def test_a_decision_on_another_ledger_head_is_named():
    seq, _hash = ledger_head()
    check = check_record(with_review(review_chain(HUB_KEY, "HUB", [seq - 1, "0" * 64])), "HUB")
    assert any("not the record that was decided" in p for p in check.problems), check.problems


def test_a_decision_on_an_earlier_entry_of_the_ledger_binds_what_follows_came_after_release():
    ledger = json.loads(record_document(SPOKE_KEY, HUB_KEY))["ledger"]
    earlier = [ledger[-2]["body"]["seq"], ledger[-2]["hash"]]
    check = check_record(with_review(review_chain(HUB_KEY, "HUB", earlier)), "HUB")
    assert check.problems == ()


def test_the_hub_is_read_from_its_certificate_subject():
    subject = "CN=Central hub (HUB) batch records,O=Central hub,OU=MES site HUB"
    assert issuer_site(subject) == "HUB"
    assert issuer_site("CN=someone else") is None
