"""Documents the hub signs: HTML → PDF/A-3b (WeasyPrint) → PAdES signature (pyHanko).

``render`` writes the executed batch record (``record_html``, ``render_record_pdf``: PDF/A-3b
with the batch's canonical JSON ledger attached) and any other document in one piece
(``render_document_pdf``); ``comparability`` writes the CPV comparability report with its CSV
embedded; ``readback`` checks a print's text before it is signed; ``sign`` signs and checks a PDF
with the hub's document-signing certificate; ``verify`` is the offline check of an issued record
or report (``mes verify``): the PDF signature, the embedded ledger or data and, at the hub, the
database's copy of a record.
"""

from mes.pdf.render import record_html, render_record_pdf

__all__ = ["record_html", "render_record_pdf"]
