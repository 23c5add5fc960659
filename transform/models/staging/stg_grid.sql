{#- The current version of every grid measurement. -#}
{% set columns = ['node_id', 'ts', 'interval_s', 'load_mw', 'generation_mw', 'frequency_hz',
                  'voltage_kv', 'price_per_mwh', 'quality', 'status', 'ingested_at'] %}

select
    cast(node_id as varchar(64)) as node_id,
    ts,
    cast(interval_s as integer) as interval_s,
    cast(load_mw as {{ float_type() }}) as load_mw,
    cast(generation_mw as {{ float_type() }}) as generation_mw,
    cast(frequency_hz as {{ float_type() }}) as frequency_hz,
    cast(voltage_kv as {{ float_type() }}) as voltage_kv,
    cast(price_per_mwh as {{ float_type() }}) as price_per_mwh,
    cast(quality as integer) as quality,
    cast(status as varchar(16)) as status,
    ingested_at
from ({{ current_versions(
    series_source('grid'), ['node_id', 'ts'], columns,
    within=(['date'] if target.type == 'duckdb' else []),
    versioned_days=(source('lake', 'grid_versioned_days') if target.type == 'duckdb' else none),
) }}) current_grid
