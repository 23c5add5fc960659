{#- Energy per meter and local calendar month, rolled up from the daily mart (in the
    meter's commodity unit, as there). -#}
select
    meter_id || '|' || cast(cast(date_trunc('month', local_day) as date) as varchar(10)) as meter_month_key,
    meter_id,
    cast(date_trunc('month', local_day) as date) as local_month,
    max(timezone) as timezone,
    max(region) as region,
    max(node_id) as node_id,
    max(tariff) as tariff,
    max(commodity) as commodity,
    max(unit) as unit,
    sum(import_kwh) as import_kwh,
    sum(measured_kwh) as measured_kwh,
    sum(estimated_kwh) as estimated_kwh,
    sum(export_kwh) as export_kwh,
    max(peak_kw) as peak_kw,
    count(*) as days,
    sum(intervals) as intervals,
    sum(present) as present,
    sum(estimated) as estimated,
    sum(suspect) as suspect,
    sum(missing) as missing,
    sum(rejected) as rejected
from {{ ref('fct_consumption_daily') }}
group by meter_id, cast(date_trunc('month', local_day) as date)
