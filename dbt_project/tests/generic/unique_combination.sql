{#
    The columns are unique together, as a composite PRIMARY KEY or UNIQUE constraint is:
    rows with a NULL in any of the columns are not compared (PostgreSQL's default).
    `columns` are column names, quoted here, so mixed-case names are written as they are.

        data_tests:
          - unique_combination:
              arguments:
                columns: [order_id, line_no]
#}
{% test unique_combination(model, columns) %}

{%- set quoted = [] -%}
{%- for column in columns -%}
    {%- do quoted.append(adapter.quote(column)) -%}
{%- endfor %}

select
    {{ quoted | join(', ') }},
    count(*) as n_records

from {{ model }}

where {% for column in quoted -%}
    {{ column }} is not null{% if not loop.last %} and {% endif %}
{%- endfor %}

group by {{ quoted | join(', ') }}

having count(*) > 1

{% endtest %}
