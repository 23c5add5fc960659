{#- Energy per meter and local day, with the meter's region, grid node and tariff. -#}
select
    meter_id || '|' || cast(local_day as varchar(10)) as meter_day_key,
    meter_id,
    local_day,
    max(bucket_timezone) as timezone,
    max(region) as region,
    max(node_id) as node_id,
    max(tariff) as tariff,
    sum(energy_kwh) as import_kwh,
    sum(measured_kwh) as measured_kwh,
    coalesce(sum(estimated_kwh), 0) as estimated_kwh,
    sum(export_kwh) as export_kwh,
    max(demand_kw) as peak_kw,
    count(*) as intervals,
    sum(is_present) as present,
    sum(is_estimated) as estimated,
    sum(is_suspect) as suspect,
    sum(is_missing) as missing,
    sum(is_rejected) as rejected
from {{ ref('int_readings_local') }}
group by meter_id, local_day
