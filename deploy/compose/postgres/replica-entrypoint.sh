#!/bin/bash
# A hot standby of the primary: on first start copy it (pg_basebackup, streaming the WAL
# written meanwhile, -R writes primary_conninfo and standby.signal), then run postgres.
set -euo pipefail

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until pg_basebackup --host="$PRIMARY_HOST" --username=replicator --pgdata="$PGDATA" \
        --wal-method=stream --slot=replica_1 --write-recovery-conf --checkpoint=fast \
        --progress; do
    echo "waiting for the primary at $PRIMARY_HOST" >&2
    rm -rf "${PGDATA:?}"/*
    sleep 2
  done
  chmod 0700 "$PGDATA"
fi
exec postgres -D "$PGDATA" -c hot_standby=on -c hot_standby_feedback=on
