{#- Consumption per local day of each region x tariff (the customer segment) x commodity:
    the sums BI tools add up to regions, segments and the fleet. Grouped by commodity and
    unit because kWh and a water meter's m3 do not add (docs/guides/commodities.md); a
    fleet total is the sum over regions and tariffs of one commodity. Each meter counts
    on its own local day. From the daily mart (small), not the readings. -#}
select
    cast(local_day as varchar(10)) || '|' || coalesce(region, '') || '|'
        || coalesce(tariff, '') || '|' || coalesce(commodity, '') as segment_day_key,
    local_day,
    region,
    tariff,
    commodity,
    max(unit) as unit,
    count(*) as meters,
    sum(import_kwh) as import_quantity,
    sum(measured_kwh) as measured_quantity,
    sum(estimated_kwh) as estimated_quantity,
    sum(export_kwh) as export_quantity,
    sum(intervals) as intervals,
    sum(present) as present,
    sum(estimated) as estimated,
    sum(suspect) as suspect,
    sum(missing) as missing,
    sum(rejected) as rejected
from {{ ref('fct_consumption_daily') }}
group by local_day, region, tariff, commodity
