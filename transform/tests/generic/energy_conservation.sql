{#- ENERGY CONSERVATION: a mart's total energy equals the energy of the current readings
    it is built from (rejected readings carry none), within a relative tolerance
    (var energy_tolerance) for floating-point summation order. Returns one row on failure. -#}
{% test energy_conservation(model, column_name, source_model, source_column) %}
with mart as (
    select coalesce(sum({{ column_name }}), 0) as kwh from {{ model }}
),
readings as (
    select coalesce(sum({{ source_column }}), 0) as kwh
    from {{ source_model }}
    where status <> 'rejected'
)
select mart.kwh as mart_kwh, readings.kwh as readings_kwh
from mart cross join readings
where abs(mart.kwh - readings.kwh) > {{ var('energy_tolerance') }} * greatest(abs(readings.kwh), 1.0)
{% endtest %}

{#- the same, meter by meter: a meter whose energy moved or vanished fails on its own
    even when errors elsewhere would cancel in the total -#}
{% test energy_conservation_by_meter(model, source_model, column) %}
with mart as (
    select meter_id, coalesce(sum({{ column }}), 0) as kwh from {{ model }} group by meter_id
),
readings as (
    select meter_id,
        coalesce(sum(case when status <> 'rejected' then {{ column }} end), 0) as kwh
    from {{ source_model }}
    group by meter_id
)
select coalesce(m.meter_id, r.meter_id) as meter_id, m.kwh as mart_kwh, r.kwh as readings_kwh
from mart m
full outer join readings r on r.meter_id = m.meter_id
where m.meter_id is null or r.meter_id is null
   or abs(m.kwh - r.kwh) > {{ var('energy_tolerance') }} * greatest(abs(r.kwh), 1.0)
{% endtest %}
