{#- Snowflake: the lake's landing tables, loaded from the S3 lake before each run.

    Runs as the project's on-run-start hook, and only on the snowflake target with
    var('snowflake_stage') set (Metrify passes METRIFY_WAREHOUSE__SNOWFLAKE__STAGE). It makes
    the external stage over the lake's URL (var('lake_url'), s3://...) with the storage
    integration named in var('snowflake_storage_integration') when the stage is missing,
    creates each landing table when missing, then COPY INTO appends the Parquet files it has
    not loaded yet: Snowflake's load history skips files already loaded, so every run is
    incremental and re-running one loads nothing twice. A file rewritten by lake compaction
    is loaded again; its rows are versions the table already holds, and staging keeps one
    current version per key (latest ingested_at), so the marts do not change.

    What this cannot be tested against here: a real account, stage, integration and S3
    bucket. fakesnow runs the models' SQL; it has no stages and no COPY from S3. -#}

{% macro snowflake_load_lake() -%}
    {%- if target.type != 'snowflake' or not var('snowflake_stage', none) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set schema = var('lake_schema') -%}
    {%- set stage = schema ~ '.' ~ var('snowflake_stage') -%}
    create schema if not exists {{ schema }};
    {% if var('lake_url', none) and var('snowflake_storage_integration', none) %}
    create stage if not exists {{ stage }}
        url = '{{ var("lake_url").rstrip("/") }}/'
        storage_integration = {{ var('snowflake_storage_integration') }}
        file_format = (type = parquet);
    {% endif %}
    {% for kind, columns in metrify_landing_tables().items() %}
    create table if not exists {{ schema }}.{{ kind }} ({{ columns }});
    copy into {{ schema }}.{{ kind }}
        from @{{ stage }}/{{ kind }}/
        file_format = (type = parquet)
        match_by_column_name = case_insensitive
        pattern = '.*[.]parquet'
        on_error = abort_statement;
    {% endfor %}
{%- endmacro %}

{% macro metrify_landing_tables() -%}
    {{ return({
        'readings': 'meter_id varchar, ts timestamp_tz, interval_s integer, import_kwh double, export_kwh double, register_kwh double, voltage_v double, current_a double, power_factor double, active_power_kw double, reactive_power_kvar double, frequency_hz double, generation_kwh double, volume_m3 double, export_register_kwh double, quality integer, status varchar, source varchar, ingested_at timestamp_tz',
        'grid': 'node_id varchar, ts timestamp_tz, interval_s integer, load_mw double, generation_mw double, frequency_hz double, voltage_kv double, price_per_mwh double, quality integer, status varchar, source varchar, ingested_at timestamp_tz',
        'weather': 'station_id varchar, ts timestamp_tz, temperature_c double, humidity_pct double, wind_speed_ms double, wind_dir_deg double, pressure_hpa double, precipitation_mm double, solar_wm2 double, cloud_cover_pct double, quality integer, status varchar, source varchar, ingested_at timestamp_tz',
        'events': 'meter_id varchar, ts timestamp_tz, event varchar, code varchar, details varchar, source varchar, ingested_at timestamp_tz',
    }) }}
{%- endmacro %}
