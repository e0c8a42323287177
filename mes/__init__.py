"""GMP-in-a-box MES: electronic batch records for point-of-care manufacturing.

Only the version lives here, so that ``import mes.core`` never loads Flask or SQLAlchemy.
"""

__version__ = "0.1.0"
