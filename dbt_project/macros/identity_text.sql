{#- Text helpers of identity resolution. Regex and accent folding differ between engines, so
    they are dispatched; everything else is portable SQL. -#}

{#- Lower-case letters without diacritics (Žalgiris -> zalgiris). Other scripts (Hangul, Han,
    Hebrew) pass through unchanged. -#}
{% macro identity_fold_text(text_expr) -%}
    {{ return(adapter.dispatch('identity_fold_text', 'crm360')(text_expr)) }}
{%- endmacro %}

{#- Engines without accent folding: the Latin letters with diacritics of European names. -#}
{% macro default__identity_fold_text(text_expr) -%}
    replace(
        translate(
            lower(trim({{ text_expr }})),
            'áàâäãåāăąçćčďđéèêëēėęěğíìîïīįıłľĺńňñóòôöõøōőŕřśšşťţúùûüūůűųýÿźżž',
            'aaaaaaaaacccddeeeeeeeegiiiiiiilllnnnoooooooorrsssttuuuuuuuuyyzzz'
        ),
        'ß', 'ss'
    )
{%- endmacro %}

{% macro duckdb__identity_fold_text(text_expr) -%}
    replace(lower(strip_accents(trim({{ text_expr }}))), 'ß', 'ss')
{%- endmacro %}


{#- Remove every character that is not a letter (digits, punctuation, spaces, apostrophes):
    "O'Brien" and "obrien" are one token. -#}
{% macro identity_letters_only(text_expr) -%}
    {{ return(adapter.dispatch('identity_letters_only', 'crm360')(text_expr)) }}
{%- endmacro %}

{% macro default__identity_letters_only(text_expr) -%}
    regexp_replace({{ text_expr }}, '[^[:alpha:]]', '')
{%- endmacro %}

{% macro duckdb__identity_letters_only(text_expr) -%}
    regexp_replace({{ text_expr }}, '[^\p{L}]', '', 'g')
{%- endmacro %}

{% macro spark__identity_letters_only(text_expr) -%}
    regexp_replace({{ text_expr }}, '[^\\p{L}]', '')
{%- endmacro %}


{#- One normalised name token (a first or a last name): folded, letters only, NULL when empty. -#}
{% macro identity_name_token(text_expr) -%}
    nullif({{ identity_letters_only(identity_fold_text(text_expr)) }}, '')
{%- endmacro %}


{#- Digits and '+' only: the notation-independent form of a written phone number. -#}
{% macro identity_phone_digits(text_expr) -%}
    {{ return(adapter.dispatch('identity_phone_digits', 'crm360')(text_expr)) }}
{%- endmacro %}

{% macro default__identity_phone_digits(text_expr) -%}
    nullif(regexp_replace(trim({{ text_expr }}), '[^0-9+]', ''), '')
{%- endmacro %}

{% macro duckdb__identity_phone_digits(text_expr) -%}
    nullif(regexp_replace(trim({{ text_expr }}), '[^0-9+]', '', 'g'), '')
{%- endmacro %}


{#- A stable text id from text: `prefix` and the first 20 hex digits of the md5 (80 bits). -#}
{% macro identity_hash_id(prefix, text_expr) -%}
    {{ dbt.concat(["'" ~ prefix ~ "'", "substr(" ~ dbt.hash(text_expr) ~ ", 1, 20)"]) }}
{%- endmacro %}


{#- Incremental filter of a model that keeps a `source` column: the rows of `source_name`
    loaded after the newest _loaded_at of that source already in the model. -#}
{% macro identity_loaded_since(source_name) -%}
    {%- if is_incremental() -%}
    where _loaded_at > (
        select coalesce(max(_loaded_at), cast('1900-01-01 00:00:00' as timestamp))
        from {{ this }}
        where source = '{{ source_name }}'
    )
    {%- endif -%}
{%- endmacro %}


{#- The start of this dbt invocation as a timestamp literal: the `assigned_at` / `recorded_at`
    of every id this run assigns (one value for all models of the run). -#}
{% macro identity_run_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{#- Two normalised name tokens are the same name: equal, or a typo of each other (levenshtein
    distance <= `distance`, both of 4+ letters: short names differ by one letter too often). -#}
{% macro identity_name_tokens_match(a, b, distance) -%}
    ({{ a }} = {{ b }} or (
        length({{ a }}) >= 4 and length({{ b }}) >= 4
        and levenshtein({{ a }}, {{ b }}) <= {{ distance }}
    ))
{%- endmacro %}


{#- A record's key in the identity tables: its source (the landing folder), ':' and its id in
    that source, as text. SQL expressions in, one expression out. -#}
{% macro identity_record_key(source_sql, source_record_id_sql) -%}
    {{ dbt.concat([source_sql, "':'", source_record_id_sql]) }}
{%- endmacro %}


{#- The source_record_id of a record key, given its source: identity_record_key undone (the
    intermediate identity tables keep the key only; 0.8 GB per table at 1,000,000 people). -#}
{% macro identity_source_record_id(record_key_sql, source_sql) -%}
    {{ dbt.right(record_key_sql, dbt.length(record_key_sql) ~ ' - ' ~ dbt.length(source_sql) ~ ' - 1') }}
{%- endmacro %}


{#- An identifier's key, its node in the identity graph: its type, ':' and its value. Written in
    int_identifiers_extracted, and built again where a model joins on it without reading that
    stored column (customer_identifiers). -#}
{% macro identity_identifier_key(type_sql, value_sql) -%}
    {{ dbt.concat([type_sql, "':'", value_sql]) }}
{%- endmacro %}
