{#- Where a time series comes from, by target:
    duckdb     the lake (every version of a record; the metrify plugin reads it),
    snowflake  the lake's landing tables, staged from S3 (macros/snowflake_stage.sql),
    postgres   the store's tables (current versions only; history is elsewhere).
    Every staging model then keeps the current version per key the same way. -#}
{% macro series_source(kind) -%}
    {%- set tables = {'readings': 'readings', 'grid': 'grid_measurements', 'weather': 'weather_observations'} -%}
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
{% macro current_versions(relation, key, columns, where=none, within=[]) -%}
    select {{ columns | join(', ') }}
    from (
        select {{ columns | join(', ') }},
            row_number() over (
                partition by {{ (within + key) | join(', ') }}
                order by ingested_at desc, quality asc
            ) as version_rank
        from {{ relation }}
        {% if where %}where {{ where }}{% endif %}
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
