"""Recipe instructions as safe HTML: the one place CommonMark written by recipe authors is rendered.

Phase instructions are CommonMark. They are rendered without raw HTML (``<script>`` shows as
text), without images (nothing is fetched from elsewhere while a record is read) and with links
only to ``http``, ``https``, ``mailto`` or relative addresses, so a recipe can never run code in
the browser of the person reading or executing it, nor reach into the printed record's layout.
The operator's page, the master recipe page and the printed record (:mod:`mes.pdf`) all render
instructions here; each wraps the result as markup for its own template engine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)


def safe_link(url: str) -> bool:
    """True for a link a reader may follow: http(s), mailto, or a relative address."""
    match = _SCHEME.match(url.strip())
    return match is None or match.group(1).lower() in SAFE_SCHEMES


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.disable("image")
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(
        renderer: RendererHTML,
        tokens: Sequence[Token],
        idx: int,
        options: OptionsDict,
        env: EnvType,
    ) -> str:
        tokens[idx].attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def markdown_html(text: str | None) -> str:
    """CommonMark → HTML safe to put in a page: raw HTML escaped, no images, safe links only."""
    return _MD.render(text or "")
