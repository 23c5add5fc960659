{#- Meter events, one row per (meter_id, ts, event): the store's key, on which a re-sent
    event changes nothing and a changed code or details replaces the stored row. The
    lake's events table holds that current row only, but Snowflake's landing table keeps
    each row it loaded (a compaction or a changed event loads again), so the latest
    ingested_at wins here as it does for readings. Events are few (a handful per meter
    and month): a plain table, the window over all of them every run. -#}
{{ config(materialized='table') }}

{% set columns = ['meter_id', 'ts', 'event', 'code', 'details', 'source', 'ingested_at'] %}

select
    cast(meter_id as varchar(64)) as meter_id,
    ts,
    cast(event as varchar(32)) as event,
    {#- unbounded, as in the store: a cast to varchar(n) would cut a long code silently -#}
    cast(code as varchar) as code,
    cast(details as varchar) as details,
    cast(source as varchar(256)) as source,
    ingested_at
from (
    {{ current_versions(
        series_source('events'),
        ['meter_id', 'ts', 'event'],
        columns,
        tiebreak="coalesce(code, '') desc, coalesce(details, '') desc",
    ) }}
) current_events
