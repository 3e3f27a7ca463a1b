"""The warehouse: PostgreSQL as the system of record (and, later, DuckDB rollups)."""
