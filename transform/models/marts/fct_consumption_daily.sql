{#- Energy per meter and local day, with the meter's region, grid node, tariff and
    commodity. import_kwh is in the commodity's quantity unit (`unit`): kWh for
    electricity, gas and heat, m3 for water (docs/guides/commodities.md); sums across
    meters group by commodity. From the rollup (int_readings_rollup). -#}
select
    r.meter_id || '|' || cast(r.local_day as varchar(10)) as meter_day_key,
    r.meter_id,
    r.local_day,
    m.bucket_timezone as timezone,
    m.region,
    m.node_id,
    m.tariff,
    m.commodity,
    {{ quantity_unit('m.commodity') }} as unit,
    r.energy_kwh as import_kwh,
    r.measured_kwh,
    coalesce(r.estimated_kwh, 0) as estimated_kwh,
    r.export_kwh,
    r.peak_kw,
    r.intervals,
    r.present,
    r.estimated,
    r.suspect,
    r.missing,
    r.rejected
from {{ ref('int_readings_rollup') }} r
left join {{ ref('stg_meters') }} m on m.meter_id = r.meter_id
where r.grain = 'meter_day'
