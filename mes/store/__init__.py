"""Persistence adapter: SQLAlchemy tables, engines, the unit of work and read models."""
