{#- Meter events per meter, local day and event type: how many, the first and last (UTC
    instants), and for power failures the outages they began.

    The local day is the meter's bucket zone (its timezone, or the fleet zone for a meter
    that names none or is not registered: the store takes events of any meter), as in
    fct_consumption_daily. Outages pair failures with restores as the store's outage read
    does (metrify.stores.events.outages): per meter in time order, a power_failure not
    preceded by another failure begins an outage, a second failure before a restore
    begins nothing new, and the first power_restore after it ends it; a restore with no
    failure before it ends nothing. An outage counts on the local day it began, whole
    (one that runs past midnight is not split); one with no restore stored yet is open
    and has no length. Events at the same instant are taken in the order of their names,
    so a failure and a restore stamped alike make an outage of 0 minutes. -#}
with located as (
    select
        e.meter_id,
        e.ts,
        e.event,
        coalesce(m.bucket_timezone, '{{ var("fleet_timezone") }}') as timezone,
        m.region,
        m.node_id
    from {{ ref('stg_events') }} e
    left join {{ ref('stg_meters') }} m on m.meter_id = e.meter_id
),

events as (
    select *, cast({{ local_ts('ts', 'timezone') }} as date) as local_day
    from located
),

power as (
    select
        meter_id,
        ts,
        event,
        local_day,
        lag(event) over (partition by meter_id order by ts, event) as previous_event,
        min(case when event = 'power_restore' then ts end) over (
            partition by meter_id order by ts, event
            rows between 1 following and unbounded following
        ) as restored_at
    from events
    where event in ('power_failure', 'power_restore')
),

outages as (
    select
        meter_id,
        local_day,
        count(*) as outages,
        count(*) - count(restored_at) as open_outages,
        coalesce(sum({{ seconds_between('ts', 'restored_at') }}), 0) / 60.0 as outage_minutes
    from power
    where event = 'power_failure'
        and (previous_event is null or previous_event <> 'power_failure')
    group by meter_id, local_day
),

daily as (
    select
        meter_id,
        local_day,
        event,
        max(timezone) as timezone,
        max(region) as region,
        max(node_id) as node_id,
        count(*) as events,
        min(ts) as first_ts,
        max(ts) as last_ts
    from events
    group by meter_id, local_day, event
)

select
    d.meter_id || '|' || cast(d.local_day as varchar(10)) || '|' || d.event as meter_day_event_key,
    d.meter_id,
    d.local_day,
    d.timezone,
    d.region,
    d.node_id,
    d.event,
    d.events,
    d.first_ts,
    d.last_ts,
    case when d.event = 'power_failure' then coalesce(o.outages, 0) end as outages,
    case when d.event = 'power_failure' then coalesce(o.open_outages, 0) end as open_outages,
    case when d.event = 'power_failure'
        then cast(coalesce(o.outage_minutes, 0) as {{ float_type() }}) end as outage_minutes
from daily d
left join outages o
    on d.event = 'power_failure' and o.meter_id = d.meter_id and o.local_day = d.local_day
