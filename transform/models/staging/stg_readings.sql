{#- The current version of every meter reading. On PostgreSQL and Snowflake incremental: a
    run reads only versions ingested since the last one (less a lookback) and replaces
    those keys, so a correction or an estimate replaced by a real reading lands in place.
    On DuckDB a view over the lake: the marts read the Parquet files once each, and
    copying every reading into the warehouse first cost more than the marts together
    (bench/results/batch-2026-12-06.md). -#}
{{ config(
    materialized=('view' if target.type == 'duckdb' else 'incremental'),
    unique_key=['meter_id', 'ts'],
    incremental_strategy=('merge' if target.type == 'snowflake' else 'delete+insert'),
    on_schema_change='append_new_columns',
) }}

{% set columns = ['meter_id', 'ts', 'interval_s', 'import_kwh', 'export_kwh', 'register_kwh',
                  'generation_kwh', 'volume_m3', 'quality', 'status', 'source', 'ingested_at'] %}

select
    cast(meter_id as varchar(64)) as meter_id,
    ts,
    cast(interval_s as integer) as interval_s,
    cast(import_kwh as {{ float_type() }}) as import_kwh,
    cast(export_kwh as {{ float_type() }}) as export_kwh,
    cast(register_kwh as {{ float_type() }}) as register_kwh,
    cast(generation_kwh as {{ float_type() }}) as generation_kwh,
    cast(volume_m3 as {{ float_type() }}) as volume_m3,
    cast(quality as integer) as quality,
    cast(status as varchar(16)) as status,
    cast(source as varchar(256)) as source,
    ingested_at
from (
    {{ current_versions(
        series_source('readings'),
        ['meter_id', 'ts'],
        columns,
        where=('(' ~ since_last_load() ~ ')') if is_incremental() else none,
        within=(['date'] if target.type == 'duckdb' else []),
        versioned_days=(source('lake', 'readings_versioned_days') if target.type == 'duckdb' else none),
    ) }}
) current_readings
