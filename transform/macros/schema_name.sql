{#- Schemas named plainly (staging, intermediate, marts), not <target schema>_staging:
    BI tools and the docs point at one stable name per layer. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
