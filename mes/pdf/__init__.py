"""Batch records as documents: HTML → PDF/A-3b (WeasyPrint) → PAdES signature (pyHanko).

``sign`` signs and checks a PDF with the hub's document-signing certificate; ``verify`` is the
offline check of an issued record (``mes verify``): the PDF signature, the embedded ledger and,
at the hub, the database's copy.
"""
