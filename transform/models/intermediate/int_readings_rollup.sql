{#- Every reading-level sum the marts need, from one pass over the current readings:
    GROUPING SETS compute the three grains together, so the readings (on DuckDB the
    lake's Parquet files, a time-zone join and the current-version step) are read once
    for the daily, load-profile and grid marts instead of once each. Small: one row
    per meter and local day, per meter x season x hour of week, per node x UTC day x
    commodity (about 4 % of the readings at 30-minute intervals). On 683M readings
    the three separate passes took 194 s (bench/results/batch-2026-12-06.md).

    grain      key columns set                     read by
    meter_day  meter_id, local_day                 fct_consumption_daily
    profile    meter_id, season, hour_of_week      fct_load_profile
    node_day   node_id, utc_day, commodity         fct_grid_loading

    Means are left as sums and counts, so a mart divides once (avg = sum / count over
    the same rows). Reference columns (region, node, tariff, zone) are joined in the
    marts from the meters: the readings carry no copy of their own. -#}
select
    case
        when grouping(local_day) = 0 then 'meter_day'
        when grouping(hour_of_week) = 0 then 'profile'
        else 'node_day'
    end as grain,
    meter_id,
    local_day,
    season,
    hour_of_week,
    node_id,
    utc_day,
    commodity,
    sum(energy_kwh) as energy_kwh,
    count(energy_kwh) as energy_intervals,
    sum(measured_kwh) as measured_kwh,
    count(measured_kwh) as measured_intervals,
    sum(estimated_kwh) as estimated_kwh,
    sum(export_kwh) as export_kwh,
    sum(demand_kw) as demand_kw_sum,
    count(demand_kw) as demand_intervals,
    max(demand_kw) as peak_kw,
    count(*) as intervals,
    sum(is_present) as present,
    sum(is_estimated) as estimated,
    sum(is_suspect) as suspect,
    sum(is_missing) as missing,
    sum(is_rejected) as rejected
    {%- if target.type == 'duckdb' %},
    {#- DuckDB: what the staging key test needs (unique_key with slots=), so that it
        reads this table instead of the readings once more. Per meter and local day, each
        reading on the quarter-hour grid sets the bit of its instant's distance from
        the local midnight, in quarter hours, modulo 128 (32 h): a local day spans at
        most 25 h, so two distinct instants never share a bit and the day's readings on
        the grid are unique when they set as many bits as there are of them. -#}
    sum(case when on_grid then 0 else 1 end) as off_grid,
    {#- and readings whose status is none of the contract's (stg_readings' status test) -#}
    sum(case when status in ('valid', 'suspect', 'estimated', 'rejected') then 0 else 1 end)
        as unknown_status,
    bit_or(case when on_grid then cast(1 as hugeint) << cast(
        ((since_midnight_us // 900000000) % 128 + 128) % 128 as integer) end) as slot_bits
    {%- endif %}
from (
    select
        *
        {%- if target.type == 'duckdb' %},
        epoch_us(ts) - epoch_us(cast(local_day as timestamp)) as since_midnight_us,
        epoch_us(ts) % 900000000 = 0 as on_grid
        {%- endif %}
    from {{ ref('int_readings_local') }}
) readings
group by grouping sets (
    (meter_id, local_day),
    (meter_id, season, hour_of_week),
    (node_id, utc_day, commodity)
)
