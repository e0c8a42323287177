"""Batch records as documents: HTML → PDF/A-3b (WeasyPrint) → PAdES signature (pyHanko).

``render`` writes the executed batch record (``record_html``, ``render_record_pdf``: PDF/A-3b
with the batch's canonical JSON ledger attached); ``sign`` signs and checks a PDF with the hub's
document-signing certificate; ``verify`` is the offline check of an issued record
(``mes verify``): the PDF signature, the embedded ledger and, at the hub, the database's copy.
"""

from mes.pdf.render import record_html, render_record_pdf

__all__ = ["record_html", "render_record_pdf"]
