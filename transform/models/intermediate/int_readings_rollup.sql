{#- Every reading-level sum the marts need, in one table: per meter and local day, per
    meter x season x hour of week, per node x UTC day x commodity (about 4 % of the
    readings at 30-minute intervals). The daily, load-profile and grid marts, the staging
    key test (DuckDB) and the status test read it, not the readings.

    grain      key columns set                     read by
    meter_day  meter_id, local_day                 fct_consumption_daily
    profile    meter_id, season, hour_of_week      fct_load_profile
    node_day   node_id, utc_day, commodity         fct_grid_loading

    Three GROUP BYs joined by UNION ALL, each its own scan of the readings, and not one
    GROUPING SETS pass: GROUPING SETS computes every aggregate (the key test's 128-bit
    slots too) for every grain in one hash table, and on 676M readings (2 GB) that took
    528 s where the three scans take about 190 s (bench/results/batch-2026-12-06.md).
    On 52M readings it had looked faster; the hash table spills at the larger size.

    Means are left as sums and counts, so a mart divides once (avg = sum / count over
    the same rows). Reference columns (region, node, tariff, zone) are joined in the
    marts from the meters: the readings carry no copy of their own. -#}
{%- set readings -%}
    select
        *
        {%- if target.type == 'duckdb' %},
        epoch_us(ts) - epoch_us(cast(local_day as timestamp)) as since_midnight_us,
        epoch_us(ts) % 900000000 = 0 as on_grid
        {%- endif %}
    from {{ ref('int_readings_local') }}
{%- endset -%}
{%- set sums -%}
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
{%- endset -%}
{#- DuckDB: what the staging key test needs (unique_key with slots=), so that it reads
    this table instead of the readings once more; only the meter_day grain carries it.
    Per meter and local day, each reading on the quarter-hour grid sets the bit of its
    instant's distance from the local midnight, in quarter hours, modulo 128 (32 h): a
    local day spans at most 25 h, so two distinct instants never share a bit and the
    day's readings on the grid are unique when they set as many bits as there are of
    them. Also readings whose status is none of the contract's (stg_readings' status
    test). -#}
{%- set key_columns -%}
    {%- if target.type == 'duckdb' %},
    sum(case when on_grid then 0 else 1 end) as off_grid,
    sum(case when status in ('valid', 'suspect', 'estimated', 'rejected') then 0 else 1 end)
        as unknown_status,
    bit_or(case when on_grid then cast(1 as hugeint) << cast(
        ((since_midnight_us // 900000000) % 128 + 128) % 128 as integer) end) as slot_bits
    {%- endif %}
{%- endset -%}
{%- set no_key_columns -%}
    {%- if target.type == 'duckdb' %},
    cast(0 as hugeint) as off_grid,
    cast(0 as hugeint) as unknown_status,
    cast(null as hugeint) as slot_bits
    {%- endif %}
{%- endset -%}
select
    'meter_day' as grain,
    meter_id,
    local_day,
    null as season,
    null as hour_of_week,
    null as node_id,
    cast(null as date) as utc_day,
    null as commodity,
    {{ sums }}
    {{ key_columns }}
from ({{ readings }}) readings
group by meter_id, local_day

union all

select
    'profile' as grain,
    meter_id,
    null as local_day,
    season,
    hour_of_week,
    null as node_id,
    cast(null as date) as utc_day,
    null as commodity,
    {{ sums }}
    {{ no_key_columns }}
from ({{ readings }}) readings
group by meter_id, season, hour_of_week

union all

select
    'node_day' as grain,
    null as meter_id,
    null as local_day,
    null as season,
    null as hour_of_week,
    node_id,
    utc_day,
    commodity,
    {{ sums }}
    {{ no_key_columns }}
from ({{ readings }}) readings
group by node_id, utc_day, commodity
