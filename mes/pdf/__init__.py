"""The printed executed batch record: HTML → PDF/A-3b (WeasyPrint), signed later (pyHanko)."""

from mes.pdf.render import record_html, render_record_pdf

__all__ = ["record_html", "render_record_pdf"]
