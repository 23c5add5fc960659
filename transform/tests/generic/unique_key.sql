{#- a compound key is unique: no two rows share the values of `columns` (and of
    `time_column`, when given: a time series' key is its id columns and a timestamp).

    DuckDB, a time series: in one aggregate per id and UTC day, not per key. Each
    timestamp on the quarter-hour grid sets its slot's bit (96 a day) in a 128-bit
    integer; the day's keys are unique when its row count equals the bits set. A
    timestamp off the grid (a 5-minute meter, seconds) is grouped by itself exactly. On
    683M readings grouping every key (a hash table of 683M entries, spilled to disk) was
    the build's slowest step (92 s); this groups 14M meter-days.

    DuckDB, other keys: grouped by the key's 64-bit hash first, then only the rows of a
    hash seen twice grouped by the columns themselves, so a hash collision is never
    reported as a duplicate. Other engines: a plain GROUP BY ... HAVING. -#}
{% test unique_key(model, columns, time_column=none) %}
{%- set all_columns = columns + ([time_column] if time_column else []) -%}
{%- set key = all_columns | join(', ') -%}
{%- if target.type == 'duckdb' and time_column %}
{%- set ids = columns | join(', ') %}
with placed as (
    select {{ ids }}, epoch_us({{ time_column }}) as t_us
    from {{ model }}
),

slotted as (
    select
        {{ ids }},
        t_us // 86400000000 as day_n,
        case when t_us >= 0 and t_us % 900000000 = 0 then -1 else t_us end as off_grid_us,
        case when t_us >= 0 and t_us % 900000000 = 0
            then cast(1 as hugeint) << cast((t_us % 86400000000) // 900000000 as integer)
        end as slot_bit
    from placed
)

select {{ ids }}, day_n, off_grid_us, count(*) as n, bit_count(bit_or(slot_bit)) as distinct_slots
from slotted
group by {{ ids }}, day_n, off_grid_us
having count(*) > coalesce(bit_count(bit_or(slot_bit)), 1)
{%- elif target.type == 'duckdb' %}
with repeated as (
    select hash({{ key }}) as key_hash
    from {{ model }}
    group by 1
    having count(*) > 1
)
select {{ key }}, count(*) as n
from {{ model }}
where hash({{ key }}) in (select key_hash from repeated)
group by {{ key }}
having count(*) > 1
{%- else %}
select {{ key }}, count(*) as n
from {{ model }}
group by {{ key }}
having count(*) > 1
{%- endif %}
{% endtest %}

{#- DuckDB: the current readings' key (meter_id, ts) is unique, read from the rollup's
    meter-day rows (int_readings_rollup) instead of the readings: a meter-day's readings
    on the quarter-hour grid are unique when they set as many slot bits as there are of
    them (see the rollup). Readings off the grid (a 5-minute meter) are checked
    exactly, in `readings`, only when the rollup counted any: in the usual lake the
    test reads no reading at all, where the per-key check was one more pass over every
    Parquet file (92 s of the 2 GB build). -#}
{% test unique_readings_by_day(model, readings) %}
{%- set off_grid = namespace(n=0) -%}
{%- if execute -%}
    {%- set found = run_query("select coalesce(sum(off_grid), 0) from " ~ model ~ " where grain = 'meter_day'") -%}
    {%- set off_grid.n = found.columns[0].values()[0] | int -%}
{%- endif %}
select meter_id, local_day, cast(null as timestamp with time zone) as ts,
    intervals - off_grid as on_grid, coalesce(bit_count(slot_bits), 0) as distinct_on_grid
from {{ model }}
where grain = 'meter_day' and intervals - off_grid <> coalesce(bit_count(slot_bits), 0)
{%- if off_grid.n > 0 %}
union all
select meter_id, null, ts, count(*), 1
from {{ readings }}
where epoch_us(ts) % 900000000 <> 0
group by meter_id, ts
having count(*) > 1
{%- endif %}
{% endtest %}
