{#- Each grid node's load against its capacity per UTC day: peak and mean load, the peak
    as a share of capacity, intervals above capacity, and the electricity its meters drew
    (electricity meters only: a gas, heat or water meter at the same node is not load on
    the electricity network, and water's m3 do not add to kWh). -#}
with measured as (
    select
        g.node_id,
        cast({{ local_ts('g.ts', "'UTC'") }} as date) as day,
        max(g.load_mw) as peak_load_mw,
        avg(g.load_mw) as mean_load_mw,
        count(*) as intervals,
        sum(case when n.capacity_mw > 0 and g.load_mw > n.capacity_mw then 1 else 0 end)
            as intervals_over_capacity,
        max(n.capacity_mw) as capacity_mw
    from {{ ref('stg_grid') }} g
    left join {{ ref('stg_grid_nodes') }} n on n.node_id = g.node_id
    where g.status <> 'rejected'
    group by g.node_id, cast({{ local_ts('g.ts', "'UTC'") }} as date)
),

metered as (
    select node_id, utc_day as day, energy_kwh as metered_kwh
    from {{ ref('int_readings_rollup') }}
    where grain = 'node_day' and node_id is not null and commodity = 'electricity'
)

select
    m.node_id || '|' || cast(m.day as varchar(10)) as node_day_key,
    m.node_id,
    m.day,
    m.peak_load_mw,
    m.mean_load_mw,
    m.capacity_mw,
    case when m.capacity_mw > 0 then 100.0 * m.peak_load_mw / m.capacity_mw end as peak_loading_pct,
    m.intervals,
    m.intervals_over_capacity,
    e.metered_kwh
from measured m
left join metered e on e.node_id = m.node_id and e.day = m.day
