{#- Where a time series (or the meter events) comes from, by target:
    duckdb     the lake (every version of a record; the metrify plugin reads it),
    snowflake  the lake's landing tables, staged from S3 (macros/snowflake_stage.sql),
    postgres   the store's tables (current versions only; history is elsewhere).
    Every staging model then keeps the current version per key the same way. -#}
{% macro series_source(kind) -%}
    {%- set tables = {'readings': 'readings', 'grid': 'grid_measurements', 'weather': 'weather_observations',
                     'events': 'meter_events'} -%}
    {%- if target.type in ('duckdb', 'snowflake') -%}
        {{ source('lake', kind) }}
    {%- else -%}
        {{ source('store', tables[kind]) }}
    {%- endif -%}
{%- endmacro %}

{#- The current version of each key among a set of versions: the latest ingested_at.
    A correction is always ingested after what it corrects; a gap row that arrives after a
    real reading is never stored (see docs/contracts.md), so the latest version wins. -#}
{#- `within` names columns that a key's versions always share (the lake's day partition,
    since the day is the UTC day of ts): leading the window's partition with them ran
    10-20 % faster on DuckDB than the bare key (bench/results/batch-2026-12-06.md). -#}
{#- `versioned_days` (DuckDB over the lake): a relation of the UTC days on which the lake
    holds more than one version of a key (the store's history says which; see
    src/metrify/stores/dbt_plugin.py). Every other day has one version per key and passes
    straight through; only the listed days go through the window. On 683M readings the
    window over everything was most of the warehouse build. -#}
{#- `tiebreak`: what orders two versions ingested at the same instant (the kinds without
    quality, the meter events, pass something else). -#}
{% macro current_versions(relation, key, columns, where=none, within=[], versioned_days=none, tiebreak='quality asc') -%}
    {%- set conditions = [] -%}
    {%- if where %}{% do conditions.append('(' ~ where ~ ')') %}{% endif -%}
    {%- if versioned_days is not none %}
    select {{ columns | join(', ') }}
    from {{ relation }}
    where date not in (select date from {{ versioned_days }})
        {%- for condition in conditions %} and {{ condition }}{% endfor %}
    union all
    {%- do conditions.append('date in (select date from ' ~ versioned_days ~ ')') -%}
    {%- endif %}
    select {{ columns | join(', ') }}
    from (
        select {{ columns | join(', ') }},
            row_number() over (
                partition by {{ (within + key) | join(', ') }}
                order by ingested_at desc{% if tiebreak %}, {{ tiebreak }}{% endif %}
            ) as version_rank
        from {{ relation }}
        {% if conditions %}where {{ conditions | join(' and ') }}{% endif %}
    ) versions
    where version_rank = 1
{%- endmacro %}

{#- the incremental window: versions ingested since the newest one already loaded, less a
    lookback, since a transaction that started earlier may commit later -#}
{% macro since_last_load(column='ingested_at') -%}
    {{ column }} > (
        select {{ dbt.dateadd('hour', -var('incremental_lookback_hours', 6), 'max(' ~ column ~ ')') }}
        from {{ this }}
    ) or (select count(*) from {{ this }}) = 0
{%- endmacro %}
