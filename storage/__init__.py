"""Persistence: SQLAlchemy models and repositories, the in-process spatial index, station importers and
alembic migrations. Nothing outside this package knows which database backend is in use."""
