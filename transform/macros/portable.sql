{#- SQL that differs between DuckDB, PostgreSQL and Snowflake, in one place. -#}

{#- the wall-clock time of a UTC instant in an IANA zone (a timestamp without zone) -#}
{% macro local_ts(ts, tz) -%}{{ return(adapter.dispatch('local_ts', 'metrify')(ts, tz)) }}{%- endmacro %}
{% macro default__local_ts(ts, tz) -%}timezone({{ tz }}, {{ ts }}){%- endmacro %}
{% macro postgres__local_ts(ts, tz) -%}({{ ts }} AT TIME ZONE {{ tz }}){%- endmacro %}
{% macro snowflake__local_ts(ts, tz) -%}convert_timezone('UTC', {{ tz }}, {{ ts }}::timestamp_ntz){%- endmacro %}

{#- true when quality bit `value` is set (quality flags: docs/contracts.md) -#}
{% macro has_flag(col, value) -%}{{ return(adapter.dispatch('has_flag', 'metrify')(col, value)) }}{%- endmacro %}
{% macro default__has_flag(col, value) -%}(({{ col }} & {{ value }}) <> 0){%- endmacro %}
{% macro snowflake__has_flag(col, value) -%}(bitand({{ col }}, {{ value }}) <> 0){%- endmacro %}

{#- day of week 0 = Monday .. 6 = Sunday, of a local timestamp -#}
{% macro iso_dow0(ts) -%}{{ return(adapter.dispatch('iso_dow0', 'metrify')(ts)) }}{%- endmacro %}
{% macro default__iso_dow0(ts) -%}(cast(extract(isodow from {{ ts }}) as integer) - 1){%- endmacro %}
{% macro snowflake__iso_dow0(ts) -%}(dayofweekiso({{ ts }}) - 1){%- endmacro %}

{#- hours in a local timestamp's hour field -#}
{% macro hour_of(ts) -%}cast(extract(hour from {{ ts }}) as integer){%- endmacro %}

{#- meteorological season of a local timestamp (northern hemisphere) -#}
{% macro season(ts) -%}
    case
        when extract(month from {{ ts }}) in (12, 1, 2) then 'winter'
        when extract(month from {{ ts }}) in (3, 4, 5) then 'spring'
        when extract(month from {{ ts }}) in (6, 7, 8) then 'summer'
        else 'autumn'
    end
{%- endmacro %}

{#- a float type every engine spells the same way in a cast -#}
{% macro float_type() -%}double precision{%- endmacro %}

{#- the unit of import_kwh (and export_kwh) for a commodity: a water meter's readings
    carry its volume there, in m3; every other commodity's is energy in kWh
    (metrify.contracts.commodities; docs/guides/commodities.md) -#}
{% macro quantity_unit(commodity) -%}
    case when {{ commodity }} = 'water' then 'm3' else 'kWh' end
{%- endmacro %}

{#- seconds from instant `start` to instant `end`, fractions kept (an outage's length) -#}
{% macro seconds_between(start, end) -%}{{ return(adapter.dispatch('seconds_between', 'metrify')(start, end)) }}{%- endmacro %}
{% macro default__seconds_between(start, end) -%}
    cast(extract(epoch from {{ end }}) - extract(epoch from {{ start }}) as {{ float_type() }})
{%- endmacro %}
{% macro snowflake__seconds_between(start, end) -%}
    (datediff('millisecond', {{ start }}, {{ end }}) / 1000.0)
{%- endmacro %}
