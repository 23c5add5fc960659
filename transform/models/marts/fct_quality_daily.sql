{#- Data quality per meter and local day: interval counts from the readings, beside the
    store's own score for the day (null where VEE has not scored it). -#}
select
    d.meter_day_key,
    d.meter_id,
    d.local_day,
    d.region,
    d.intervals,
    d.present,
    d.estimated,
    d.suspect,
    d.missing,
    d.rejected,
    q.expected,
    q.completeness,
    q.score
from {{ ref('fct_consumption_daily') }} d
left join {{ ref('stg_quality_daily') }} q
    on q.meter_id = d.meter_id and q.day = d.local_day
