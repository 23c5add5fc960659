{#- Each current reading with its meter's reference data and its local-time buckets (the
    meter's zone; the fleet zone for a meter that names none), and its energy split by
    how it was obtained. Rejected readings carry no energy; a gap row (missing) has
    energy only when estimated. A view (see intermediate.yml). -#}
{{ config(materialized='view') }}
{%- set duckdb = target.type == 'duckdb' %}
with placed as (
    select
        r.meter_id,
        r.ts,
        {% if duckdb %}epoch_us(r.ts) as ts_us,{% endif %}
        r.interval_s,
        r.import_kwh,
        r.export_kwh,
        r.quality,
        r.status,
        m.region,
        m.node_id,
        m.tariff,
        m.commodity,
        m.bucket_timezone
    from {{ ref('stg_readings') }} r
    left join {{ ref('stg_meters') }} m on m.meter_id = r.meter_id
),

located as (
    select
        p.*,
    {% if duckdb %}
        {#- local time from int_zone_offsets: a join on (zone, UTC day) and an
            integer addition, no time-zone conversion per reading -#}
        cast(make_timestamp(p.ts_us) as date) as utc_day,
        make_timestamp(p.ts_us + 1000000 * case
            when o.switch_us is not null and p.ts_us >= o.switch_us then o.offset_after_s
            else o.offset_start_s
        end) as local_ts
    from placed p
    left join {{ ref('int_zone_offsets') }} o
        on o.timezone = p.bucket_timezone and o.utc_day_n = p.ts_us // 86400000000
    {% else %}
        cast({{ local_ts('p.ts', "'UTC'") }} as date) as utc_day,
        {{ local_ts('p.ts', 'p.bucket_timezone') }} as local_ts
    from placed p
    {% endif %}
)

select
    meter_id,
    ts,
    utc_day,
    local_ts,
    cast(local_ts as date) as local_day,
    cast(date_trunc('month', local_ts) as date) as local_month,
    {{ iso_dow0('local_ts') }} * 24 + {{ hour_of('local_ts') }} as hour_of_week,
    {{ season('local_ts') }} as season,
    interval_s,
    region,
    node_id,
    tariff,
    commodity,
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
