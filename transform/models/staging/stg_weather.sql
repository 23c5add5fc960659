{#- The current version of every weather observation. -#}
{% set columns = ['station_id', 'ts', 'temperature_c', 'humidity_pct', 'wind_speed_ms',
                  'precipitation_mm', 'solar_wm2', 'cloud_cover_pct', 'quality', 'status',
                  'ingested_at'] %}

select
    cast(station_id as varchar(64)) as station_id,
    ts,
    cast(temperature_c as {{ float_type() }}) as temperature_c,
    cast(humidity_pct as {{ float_type() }}) as humidity_pct,
    cast(wind_speed_ms as {{ float_type() }}) as wind_speed_ms,
    cast(precipitation_mm as {{ float_type() }}) as precipitation_mm,
    cast(solar_wm2 as {{ float_type() }}) as solar_wm2,
    cast(cloud_cover_pct as {{ float_type() }}) as cloud_cover_pct,
    cast(quality as integer) as quality,
    cast(status as varchar(16)) as status,
    ingested_at
from ({{ current_versions(
    series_source('weather'), ['station_id', 'ts'], columns,
    within=(['date'] if target.type == 'duckdb' else []),
    versioned_days=(source('lake', 'weather_versioned_days') if target.type == 'duckdb' else none),
) }}) current_weather
