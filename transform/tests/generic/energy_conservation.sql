{#- ENERGY CONSERVATION: a mart's total energy equals the energy of what it is built from,
    within a relative tolerance (var energy_tolerance) for floating-point summation order.
    Returns one row on failure.

    The chain is checked link by link so that the readings are read once: the current
    readings (rejected ones carry none) against the daily mart meter by meter, then the
    marts built on the daily mart or the same rollup against the daily mart, which is
    small. Each link re-reading the readings cost one pass over the lake's files each
    (bench/results/batch-2026-12-06.md). `source_where`: the source rows that carry energy
    (the readings: not rejected; a mart: every row). -#}
{% test energy_conservation(model, column_name, source_model, source_column, source_where="status <> 'rejected'") %}
with mart as (
    select coalesce(sum({{ column_name }}), 0) as kwh from {{ model }}
),
source_rows as (
    select coalesce(sum({{ source_column }}), 0) as kwh
    from {{ source_model }}
    {% if source_where %}where {{ source_where }}{% endif %}
)
select mart.kwh as mart_kwh, source_rows.kwh as source_kwh
from mart cross join source_rows
where abs(mart.kwh - source_rows.kwh) > {{ var('energy_tolerance') }} * greatest(abs(source_rows.kwh), 1.0)
{% endtest %}

{#- the same, meter by meter: a meter whose energy moved or vanished fails on its own
    even when errors elsewhere would cancel in the total -#}
{% test energy_conservation_by_meter(model, source_model, column, source_column=none, source_where="status <> 'rejected'") %}
{%- set source_column = source_column or column -%}
with mart as (
    select meter_id, coalesce(sum({{ column }}), 0) as kwh from {{ model }} group by meter_id
),
source_rows as (
    select meter_id,
        coalesce(sum(
            {%- if source_where %} case when {{ source_where }} then {{ source_column }} end
            {%- else %} {{ source_column }}{% endif -%}
        ), 0) as kwh
    from {{ source_model }}
    group by meter_id
)
select coalesce(m.meter_id, r.meter_id) as meter_id, m.kwh as mart_kwh, r.kwh as source_kwh
from mart m
full outer join source_rows r on r.meter_id = m.meter_id
where m.meter_id is null or r.meter_id is null
   or abs(m.kwh - r.kwh) > {{ var('energy_tolerance') }} * greatest(abs(r.kwh), 1.0)
{% endtest %}
