{#- Typical load by meter, season and local hour of the week (0 = Monday 00:00): the
    mean energy per interval and the mean demand, over the days seen (estimates included;
    measured_kwh / measured_intervals leaves them out). -#}
select
    meter_id || '|' || season || '|' || cast(hour_of_week as varchar(3)) as profile_key,
    meter_id,
    season,
    hour_of_week,
    cast(hour_of_week / 24 as integer) as day_of_week,
    hour_of_week - 24 * cast(hour_of_week / 24 as integer) as hour_of_day,
    avg(energy_kwh) as mean_kwh,
    avg(demand_kw) as mean_kw,
    max(demand_kw) as peak_kw,
    sum(energy_kwh) as total_kwh,
    count(energy_kwh) as intervals,
    sum(measured_kwh) as measured_kwh,
    count(measured_kwh) as measured_intervals
from {{ ref('int_readings_local') }}
group by meter_id, season, hour_of_week
