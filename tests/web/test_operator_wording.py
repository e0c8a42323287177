"""The words of a phase page at the spoke (issue 15, item 13): a calculation in words with its
formula on request, limits as what is acceptable and where the alert starts."""

from __future__ import annotations

import re

from spoke_pages import app, browser, site, start_batch
from web_helpers import post_form, text

__all__ = ["app", "site"]  # the fixtures of the spoke's pages (spoke_pages)


def test_a_calculation_reads_in_words_and_its_limits_say_what_is_acceptable(app, site):
    client = browser(app, site, "olivia")
    batch_id = start_batch(client)
    site.do_check_bag(batch_id)
    url = f"/batches/{batch_id}/phases/count_cells"
    post_form(client, f"{url}/start", {}, page=url)
    page = text(client.get(url))
    card = re.search(r'<p class="calculation">.*?</details>', page, re.S).group(0)
    assert "Worked out from" in card
    assert '<details class="formula"><summary>Formula</summary><code>' in card
    assert "acceptable ≥" in page
    assert "alert ≥" not in page and "action ≥" not in page
