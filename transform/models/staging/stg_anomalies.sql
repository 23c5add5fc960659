select
    cast(id as bigint) as anomaly_id,
    cast(kind as varchar(64)) as kind,
    cast(subject_type as varchar(16)) as subject_type,
    cast(subject_id as varchar(64)) as subject_id,
    ts_start,
    ts_end,
    cast(score as {{ float_type() }}) as score,
    cast(severity as varchar(16)) as severity,
    cast(detector as varchar(64)) as detector,
    cast(status as varchar(32)) as status,
    cast(intervals as integer) as intervals
from {{ source('store', 'anomalies') }}
