{#- a compound key is unique: no two rows share the values of `columns`.
    On DuckDB in two steps: keys grouped by their 64-bit hash first (one integer per row
    groups about twice as fast as the columns), then only the rows of a hash seen twice
    grouped by the columns themselves, so a hash collision is never reported as a
    duplicate. On the warehouse's 683M readings this test was the build's slowest. -#}
{% test unique_key(model, columns) %}
{%- set key = columns | join(', ') -%}
{%- if target.type == 'duckdb' %}
with repeated as (
    select hash({{ key }}) as key_hash
    from {{ model }}
    group by 1
    having count(*) > 1
)
select {{ key }}, count(*) as n
from {{ model }}
where hash({{ key }}) in (select key_hash from repeated)
group by {{ key }}
having count(*) > 1
{%- else %}
select {{ key }}, count(*) as n
from {{ model }}
group by {{ key }}
having count(*) > 1
{%- endif %}
{% endtest %}
