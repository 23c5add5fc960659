#!/bin/bash
# First start of the primary (docker-entrypoint-initdb.d): the roles Metrify's stack needs.
#   metrify          the schema's owner (POSTGRES_USER): migrations only
#   metrify_app      NOLOGIN group holding what the code needs (migration 0010 grants it)
#   metrify_api      the login of the API, workers and batch jobs: a member of metrify_app
#   replicator       streaming replication (the replica's pg_basebackup and walreceiver)
#   airflow          Airflow's own metadata database
# Passwords come from the environment (deploy/compose/.env), never from a file here.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$APP_DB_PASSWORD" \
  -v replication_password="$REPLICATION_PASSWORD" \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE metrify_app NOLOGIN;
CREATE ROLE metrify_api LOGIN PASSWORD :'app_password' IN ROLE metrify_app;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replication_password';
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SELECT pg_create_physical_replication_slot('replica_1');
SQL

# replication connections from the stack's network, password-checked
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
