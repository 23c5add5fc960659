{#- Anomalies with where their subject sits: a meter's region and node, a node itself. -#}
select
    a.anomaly_id,
    a.kind,
    a.subject_type,
    a.subject_id,
    a.ts_start,
    a.ts_end,
    a.score,
    a.severity,
    a.detector,
    a.status,
    a.intervals,
    m.region,
    coalesce(m.node_id, case when a.subject_type = 'node' then a.subject_id end) as node_id
from {{ ref('stg_anomalies') }} a
left join {{ ref('stg_meters') }} m
    on a.subject_type = 'meter' and m.meter_id = a.subject_id
