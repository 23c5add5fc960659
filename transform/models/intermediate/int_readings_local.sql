{#- Each current reading with its meter's reference data and its local-time buckets (the
    meter's zone; the fleet zone for a meter that names none), and its energy split by
    how it was obtained. Rejected readings carry no energy; a gap row (missing) has
    energy only when estimated. A view (see intermediate.yml). -#}
{{ config(materialized='view') }}
with located as (
    select
        r.meter_id,
        r.ts,
        r.interval_s,
        r.import_kwh,
        r.export_kwh,
        r.quality,
        r.status,
        m.region,
        m.node_id,
        m.tariff,
        m.bucket_timezone,
        {{ local_ts('r.ts', 'm.bucket_timezone') }} as local_ts
    from {{ ref('stg_readings') }} r
    left join {{ ref('stg_meters') }} m on m.meter_id = r.meter_id
)

select
    meter_id,
    ts,
    local_ts,
    cast(local_ts as date) as local_day,
    cast(date_trunc('month', local_ts) as date) as local_month,
    {{ iso_dow0('local_ts') }} * 24 + {{ hour_of('local_ts') }} as hour_of_week,
    {{ season('local_ts') }} as season,
    interval_s,
    region,
    node_id,
    tariff,
    bucket_timezone,
    quality,
    status,
    case when status <> 'rejected' then import_kwh end as energy_kwh,
    case when status <> 'rejected' and not {{ has_flag('quality', 1) }} then import_kwh end as measured_kwh,
    case when status <> 'rejected' and {{ has_flag('quality', 256) }} then import_kwh end as estimated_kwh,
    case when status <> 'rejected' then export_kwh end as export_kwh,
    case when not {{ has_flag('quality', 1) }} then 1 else 0 end as is_present,
    case when {{ has_flag('quality', 1) }} and not {{ has_flag('quality', 256) }} then 1 else 0 end as is_missing,
    case when {{ has_flag('quality', 256) }} then 1 else 0 end as is_estimated,
    case when status = 'suspect' then 1 else 0 end as is_suspect,
    case when status = 'rejected' then 1 else 0 end as is_rejected,
    case when status <> 'rejected' then import_kwh * 3600.0 / interval_s end as demand_kw
from located
