{#
    A composite foreign key: every row whose `columns` are all non-NULL has a row in `to`
    whose `fields` (in the same order) hold the same values (MATCH SIMPLE, PostgreSQL's
    default). Column names are quoted here, so mixed-case names are written as they are.

        data_tests:
          - relationships_multi:
              arguments:
                columns: [warehouse_code, bin_no]
                to: ref('stg_bin')
                fields: [warehouse_code, bin_no]
#}
{% test relationships_multi(model, columns, to, fields) %}

{%- if columns | length != fields | length -%}
    {{ exceptions.raise_compiler_error(
        "relationships_multi on " ~ model ~ ": " ~ columns | length ~ " columns but "
        ~ fields | length ~ " fields") }}
{%- endif -%}

with child as (

    select {% for column in columns -%}
        {{ adapter.quote(column) }} as from_field_{{ loop.index }}{% if not loop.last %}, {% endif %}
    {%- endfor %}

    from {{ model }}

    where {% for column in columns -%}
        {{ adapter.quote(column) }} is not null{% if not loop.last %} and {% endif %}
    {%- endfor %}

),

parent as (

    select {% for field in fields -%}
        {{ adapter.quote(field) }} as to_field_{{ loop.index }}{% if not loop.last %}, {% endif %}
    {%- endfor %}

    from {{ to }}

)

select child.*

from child

where not exists (
    select 1
    from parent
    where {% for field in fields -%}
        parent.to_field_{{ loop.index }} = child.from_field_{{ loop.index }}{% if not loop.last %} and {% endif %}
    {%- endfor %}
)

{% endtest %}
