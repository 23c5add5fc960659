"""Where records rest: PostgreSQL (schema, migrations, writers and every read query), the lake."""
