{#- DuckDB only: each time zone's UTC offset per UTC day of the lake, as integers, so that
    int_readings_local turns a reading's time into local time with a join and an addition
    instead of a time-zone conversion per reading (ICU), which made the daily mart cost
    about 20 times a UTC-day sum on 683M readings (bench/results/batch-2026-12-06.md).
    A day holds at most one change of offset; it is found at quarter-hour resolution,
    which every zone's changes keep (offsets are whole quarter hours, changes fall on
    them). offset_after_s applies from switch_us on; before it, offset_start_s. -#}
{{ config(materialized='table', enabled=(target.type == 'duckdb')) }}
with zones as (
    select distinct bucket_timezone as timezone
    from {{ ref('stg_meters') }}
    where bucket_timezone is not null
),

span as (
    select min(date) - 1 as lo, max(date) + 1 as hi
    from {{ source('lake', 'readings') }}
),

days as (
    select cast(unnest(generate_series(cast(lo as timestamp), cast(hi as timestamp), interval 1 day)) as date) as day
    from span
    where lo is not null
),

quarters as (
    select z.timezone, d.day, epoch_us(cast(d.day as timestamp)) // 1000000 + 900 * q.i as at_s
    from zones z cross join days d cross join range(96) q(i)
),

offsets as (
    select
        timezone,
        day,
        at_s,
        cast(epoch(timezone(timezone, to_timestamp(at_s))) - at_s as bigint) as offset_s
    from quarters
),

marked as (
    select *, first_value(offset_s) over (partition by timezone, day order by at_s) as offset_start_s
    from offsets
)

select
    timezone,
    epoch_us(cast(day as timestamp)) // 86400000000 as utc_day_n,
    offset_start_s,
    1000000 * min(at_s) filter (where offset_s <> offset_start_s) as switch_us,
    arg_max(offset_s, at_s) as offset_after_s
from marked
group by timezone, day, offset_start_s
