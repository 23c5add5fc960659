{#- Typical load by meter, season and local hour of the week (0 = Monday 00:00): the
    mean energy per interval and the mean demand, over the days seen (estimates included;
    measured_kwh / measured_intervals leaves them out). Quantities in the meter's
    commodity unit (kWh; m3 for water). From the rollup (int_readings_rollup). -#}
select
    r.meter_id || '|' || r.season || '|' || cast(r.hour_of_week as varchar(3)) as profile_key,
    r.meter_id,
    m.commodity,
    r.season,
    r.hour_of_week,
    {#- floor: DuckDB's / of two integers is a double, which a cast would round (hour
        12 of Monday became Tuesday) -#}
    cast(floor(r.hour_of_week / 24.0) as integer) as day_of_week,
    r.hour_of_week - 24 * cast(floor(r.hour_of_week / 24.0) as integer) as hour_of_day,
    case when r.energy_intervals > 0 then r.energy_kwh / r.energy_intervals end as mean_kwh,
    case when r.demand_intervals > 0 then r.demand_kw_sum / r.demand_intervals end as mean_kw,
    r.peak_kw,
    r.energy_kwh as total_kwh,
    r.energy_intervals as intervals,
    r.measured_kwh,
    r.measured_intervals
from {{ ref('int_readings_rollup') }} r
left join {{ ref('stg_meters') }} m on m.meter_id = r.meter_id
where r.grain = 'profile'
