"""Storage: tables, migrations and the database (the repositories are domain.repos)."""
