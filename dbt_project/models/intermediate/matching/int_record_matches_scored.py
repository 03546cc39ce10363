"""Pairs of match profiles of CRM contacts and orders that are probably one person, by Splink.

A Fellegi-Sunter model over what records say about a person besides their identifiers: the
name (order-insensitive, nicknames, one-letter typos, different scripts), the street address
within its postcode, and the date of birth. Identifiers (email, phone, shop customer id) are
not compared: the deterministic identity graph links them, with its own merge protection, and
counting them here as well would count the same evidence twice.

Every parameter is fixed and documented below (m and u per level), except what is counted from
the data without sampling: term frequencies of names, street addresses and postcodes, and the
prior (how many pairs are matches, sized from pairs that share an email). Same input, same
output; no EM, no random sample, so the cost is one pass over the blocked pairs.

Records alike in everything compared (one customer's orders from one address) share a profile
(int_match_records_prepared.profile_key, PROFILE_COLUMNS) and are scored once, as that profile.
A row pairs two profiles: every record of one matches every record of the other with the row's
probability. A row pairing a profile with itself says its records match each other. Expanded to
record pairs, at 1,000,000 people the 0.73M rows were 8.4M: expanding, writing, testing and
reading those took about 4 s of a one-new-day build (one dbt thread).

The Splink backend follows the session dbt hands in: DuckDB (an in-memory connection, so that
Splink's scratch tables never land in the warehouse) or Spark (dbt-spark runs Python models on
Databricks only).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

from splink import Linker, SettingsCreator
from splink.comparison_level_library import CustomLevel
from splink.comparison_library import CustomComparison
from splink.internals.dialects import SplinkDialect  # type hints only

# Pairs below this probability are not written at all (the interface: rows only for >= 0.5);
# the identity graph then keeps those at or above var identity_match_threshold.
MIN_PROBABILITY_WRITTEN = 0.5

# Share of same-person pairs that share a normalised email: the prior is the number of
# email-sharing pairs divided by this, over all pairs. On `crm360 generate` data (20,000 people)
# 17,560 contact/order pairs shared an email and 21,899 were one person: 0.80.
EMAIL_PAIR_RECALL = 0.8

# Candidate pairs: only pairs that agree on one of these are scored. Each keeps its blocks small
# (a street address, a name within a postcode), so comparisons grow with the records, not their
# square; the cases they cover are in the comments.
BLOCKING_RULES = [
    # the same street address: typos, nicknames, swaps, names in another script, households
    "l.address_key = r.address_key",
    # the same name (either order) in the postcode: a move within it, a street left blank
    "l.postcode_key = r.postcode_key and l.full_name_key = r.full_name_key",
    # the same last name and first initial (after nicknames) in the postcode: a nickname or a
    # first-name typo together with a move or a blank street
    "l.postcode_key = r.postcode_key and l.last_name_norm = r.last_name_norm "
    "and substr(l.first_name_canonical, 1, 1) = substr(r.first_name_canonical, 1, 1)",
    # moved to another postcode: the same name and date of birth (CRM contacts)
    "l.full_name_key = r.full_name_key and l.date_of_birth = r.date_of_birth",
]


def _level(condition: str, label: str, m: float, u: float, **options: Any) -> CustomLevel:
    return CustomLevel(condition, label_for_charts=label).configure(
        m_probability=m, u_probability=u, **options
    )


def _null_level(condition: str, label: str) -> CustomLevel:
    return CustomLevel(condition, label_for_charts=label).configure(is_null_level=True)


def one_edit(dialect: SplinkDialect, left: str, right: str) -> str:
    """One typo apart: Damerau-Levenshtein <= 1, or the same letters in another order.

    DuckDB's edit distances count bytes, so a swap of two Hebrew or Hangul letters is 2 to 6
    edits there; comparing the sorted letters catches such transpositions in any script.
    """
    dl = dialect.damerau_levenshtein_function_name
    if dialect.sql_dialect_str == "spark":
        letters = "array_sort(split({}, ''))"
    else:
        letters = "list_sort(string_split({}, ''))"
    return f"{dl}({left}, {right}) <= 1 or {letters.format(left)} = {letters.format(right)}"


def name_comparison(dialect: SplinkDialect) -> CustomComparison:
    """Name parts, in any order. m: share of true duplicates at the level; u: of other pairs.

    The same last name with an unrelated first name is what a household looks like (same
    address too), so it weighs strongly against a match (m/u about 1/250); a duplicate whose
    first name changed beyond a nickname or typo is left to the identifiers.
    """
    typo = "({a}_l = {b}_r and ({close}) and length({c}_l) >= {n} and length({d}_r) >= {n})"
    typo_levels = " or ".join(
        typo.format(a=a, b=b, c=c, d=d, n=n, close=one_edit(dialect, f"{c}_l", f"{d}_r"))
        for a, b, c, d, n in (
            ("first_name_canonical", "first_name_canonical", "last_name_norm", "last_name_norm", 3),
            ("last_name_norm", "last_name_norm", "first_name_norm", "first_name_norm", 5),
            ("first_name_norm", "last_name_norm", "last_name_norm", "first_name_norm", 3),
            ("last_name_norm", "first_name_norm", "first_name_norm", "last_name_norm", 3),
        )
    )
    nickname = (
        "(first_name_canonical_l = first_name_canonical_r and last_name_norm_l = last_name_norm_r)"
    )
    one_script_differs = (
        "(first_name_is_cased_l <> first_name_is_cased_r "
        "or last_name_is_cased_l <> last_name_is_cased_r)"
    )
    one_part_equal = (
        "(last_name_norm_l = last_name_norm_r or first_name_norm_l = first_name_norm_r "
        "or first_name_norm_l = last_name_norm_r or last_name_norm_l = first_name_norm_r)"
    )
    return CustomComparison(
        output_column_name="name",
        comparison_description="First and last name, in either order",
        comparison_levels=[
            _null_level(
                "full_name_key_l is null or full_name_key_r is null", "a name part missing"
            ),
            # At one street address, people who share a last name are mostly one household,
            # so there the name counts only as much as its first name is rare: same m as the
            # next level, but u is the first name's frequency, not the full name's.
            _level(
                "full_name_key_l = full_name_key_r and address_key_l = address_key_r",
                "same name parts at the same street address",
                m=0.82,
                u=0.005,
                tf_adjustment_column="first_name_canonical",
                disable_tf_exact_match_detection=True,
            ),
            _level(
                "full_name_key_l = full_name_key_r",
                "same name parts, either order",
                m=0.82,
                u=0.0005,
                tf_adjustment_column="full_name_key",
                disable_tf_exact_match_detection=True,
            ),
            _level(
                f"{nickname} or {typo_levels}",
                "nickname, or one edit in one part",
                m=0.10,
                u=0.00002,
            ),
            _level(
                f"{one_script_differs} and {one_part_equal}",
                "one part equal, the other in another script",
                m=0.01,
                u=0.0005,
            ),
            _level(
                "first_name_is_cased_l <> first_name_is_cased_r "
                "and last_name_is_cased_l <> last_name_is_cased_r",
                "both parts in another script",
                m=0.03,
                u=0.08,
            ),
            _level(
                "last_name_norm_l = last_name_norm_r",
                "same last name, other first name (household)",
                m=0.00002,
                u=0.005,
            ),
            _level(
                "first_name_canonical_l = first_name_canonical_r",
                "same first name, other last name",
                m=0.005,
                u=0.01,
            ),
            _level("true", "names differ", m=0.03498, u=0.98),
        ],
    )


def location_comparison(dialect: SplinkDialect) -> CustomComparison:
    """Street address within its postcode; a move keeps the postcode or at least the city."""
    jw = dialect.jaro_winkler_function_name
    return CustomComparison(
        output_column_name="location",
        comparison_description="Street address, postcode and city",
        comparison_levels=[
            _null_level(
                "(postcode_key_l is null and address_norm_l is null) "
                "or (postcode_key_r is null and address_norm_r is null)",
                "no address",
            ),
            _level(
                "address_key_l = address_key_r",
                "same street address and postcode",
                m=0.70,
                u=0.00001,
                tf_adjustment_column="address_key",
            ),
            _level(
                f"postcode_key_l = postcode_key_r and {jw}(address_norm_l, address_norm_r) >= 0.9",
                "similar street address, same postcode",
                m=0.05,
                u=0.0005,
            ),
            _level(
                "postcode_key_l = postcode_key_r "
                "and (address_norm_l is null or address_norm_r is null)",
                "same postcode, a street missing",
                m=0.18,
                u=0.0001,
                tf_adjustment_column="postcode_key",
                disable_tf_exact_match_detection=True,
            ),
            _level(
                "postcode_key_l = postcode_key_r",
                "same postcode, other street (moved)",
                m=0.04,
                u=0.0003,
                tf_adjustment_column="postcode_key",
                disable_tf_exact_match_detection=True,
            ),
            _level(
                "address_norm_l = address_norm_r and city_norm_l = city_norm_r",
                "same street and city, other postcode",
                m=0.01,
                u=0.00005,
            ),
            _level("city_norm_l = city_norm_r", "same city only", m=0.01, u=0.01),
            _level("true", "elsewhere", m=0.01, u=0.98935),
        ],
    )


def date_of_birth_comparison(dialect: SplinkDialect) -> CustomComparison:
    """Date of birth (ISO text): CRM contacts only; orders have none (null level, no weight)."""
    dl = dialect.damerau_levenshtein_function_name
    return CustomComparison(
        output_column_name="date_of_birth",
        comparison_description="Date of birth",
        comparison_levels=[
            _null_level(
                "date_of_birth_l is null or date_of_birth_r is null", "date of birth missing"
            ),
            _level("date_of_birth_l = date_of_birth_r", "same date", m=0.948, u=0.00005),
            _level(
                f"{dl}(date_of_birth_l, date_of_birth_r) <= 1",
                "one digit differs or two swapped",
                m=0.05,
                u=0.001,
            ),
            # two dates: two people (a parent and child of one name); typing a date of birth
            # wrong in more than one digit is rare
            _level("true", "other date", m=0.002, u=0.99895),
        ],
    )


def namesake_comparison() -> CustomComparison:
    """Two people are known by this name at this address (two dates of birth among them).

    Unless both records carry a date of birth (compared above), such a pair cannot be told
    from the other person's: about -10 bits, cancelling the street address.
    """
    return CustomComparison(
        output_column_name="name_place_shared",
        comparison_description="Name and street address shared by two known people",
        comparison_levels=[
            _null_level("name_place_shared_l is null or name_place_shared_r is null", "never null"),
            _level(
                "name_place_shared_l and name_place_shared_r "
                "and (date_of_birth_l is null or date_of_birth_r is null)",
                "two people of this name live here",
                m=0.00001,
                u=0.01,
            ),
            _level("true", "no known namesake here", m=0.99999, u=0.99),
        ],
    )


def settings(
    dialect: SplinkDialect, prior: float, blocking_rules: list[str] | None = None
) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        comparisons=[
            name_comparison(dialect),
            location_comparison(dialect),
            date_of_birth_comparison(dialect),
            namesake_comparison(),
        ],
        blocking_rules_to_generate_predictions=blocking_rules or BLOCKING_RULES,
        probability_two_random_records_match=prior,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def prior_sql(table: str) -> str:
    """Probability that two random records are one person: email-sharing pairs / recall / pairs.

    Counted, not sampled. At least one pair per hundred records, so a tiny landing (a test)
    still has a prior; at most one in two.
    """
    return f"""
        with per_email as (
            select count(*) as n from {table}
            where email_normalized is not null group by email_normalized
        ),
        totals as (select count(*) as records from {table})
        select
            coalesce((select sum(n * (n - 1) / 2) from per_email), 0) as email_pairs,
            records
        from totals
    """


def prior_from_counts(email_pairs: float, records: int) -> float:
    all_pairs = records * (records - 1) / 2
    if all_pairs <= 0:
        return 0.5
    true_pairs = max(float(email_pairs) / EMAIL_PAIR_RECALL, records / 100)
    return min(true_pairs / all_pairs, 0.5)


# Term frequencies are shares of distinct (name, place) pairs, not of records: a customer with
# forty orders at one address must not make their own name and street look common (Splink's
# default, per record, would weaken exactly the best-documented people).
TF_COLUMNS = {
    "full_name_key": "coalesce(address_key, postcode_key, '')",
    "first_name_canonical": "coalesce(last_name_norm, '') || ':' || coalesce(address_key, '')",
    "address_key": "coalesce(full_name_key, '')",
    "postcode_key": "coalesce(full_name_key, '')",
}


def term_frequency_sql(table: str, column: str) -> str:
    other = TF_COLUMNS[column]
    return f"""
        with entities as (
            select distinct {column} as value, {other} as other
            from {table}
            where {column} is not null
        )
        select
            value as {column},
            cast(count(*) as double) / (select count(*) from entities) as tf_{column}
        from entities
        group by value
    """


# What Splink compares or blocks on: int_match_records_prepared hashes these columns, in this
# order, into each record's profile_key. Records of one profile (a customer's forty orders from
# one address) score alike against any other record, so Splink scores each distinct profile
# once and pairs profiles, not records: at 1,000,000 people 2.07M records are 1.10M profiles,
# and the orders of one person at one address no longer make a quadratic number of pairs.
PROFILE_COLUMNS = [
    "first_name_norm", "last_name_norm", "first_name_canonical", "full_name_key",
    "first_name_is_cased", "last_name_is_cased", "address_norm", "city_norm", "postcode_key",
    "address_key", "date_of_birth", "name_place_shared",
]  # fmt: skip


# What the model reads of each record: its profile, and the email that sizes the prior.
RECORD_COLUMNS = ["profile_key", *PROFILE_COLUMNS, "email_normalized"]


def profile_sql(table: str) -> dict[str, str]:
    """Tables to create, in order: the profiles (one row each, keyed by profile_key as Splink's
    record_key), and the profiles that two of their records are compared within (twice, as P
    and P~, for a second Splink run that blocks on the profile alone).

    Two records of one profile are a candidate pair when a blocking rule holds between them,
    i.e. the rule with l and r both the profile: `twin_condition`.
    """
    columns = ", ".join(PROFILE_COLUMNS)
    # every record of a profile holds the same values: min() picks them, portably
    values = ", ".join(f"min({column}) as {column}" for column in PROFILE_COLUMNS)
    both_sides = re.compile(r"\b[lr]\.")
    twin_condition = " or ".join(f"({both_sides.sub('', rule)})" for rule in BLOCKING_RULES)
    return {
        "match_profiles": f"""
            select profile_key as record_key, {values}
            from {table}
            group by profile_key
        """,
        "match_profile_twins": f"""
            with repeated as (
                select profile_key
                from {table}
                group by profile_key
                having count(*) > 1
            ),
            twins as (
                select profiles.*
                from match_profiles as profiles
                inner join repeated
                    on profiles.record_key = repeated.profile_key
                where {twin_condition}
            )
            select record_key as profile_base, twins.* from twins
            union all
            select record_key as profile_base, record_key || '~' as record_key, {columns}
            from twins
        """,
    }


def pairs_sql(profile_pairs: str, twin_pairs: str) -> str:
    """The model's rows: the scored pairs of two profiles, and each repeated profile with
    itself (its records with each other). In no particular order: nothing reads them in
    order."""
    return f"""
        with pairs as (
            select record_key_l as profile_l, record_key_r as profile_r,
                match_probability, match_weight
            from {profile_pairs}
            union all
            select record_key_l, record_key_l, match_probability, match_weight
            from {twin_pairs}
        )
        select
            least(profile_l, profile_r) as profile_key_l,
            greatest(profile_l, profile_r) as profile_key_r,
            cast(round(match_probability, 12) as double) as match_probability,
            cast(round(match_weight, 9) as double) as match_weight
        from pairs
        where match_probability >= {MIN_PROBABILITY_WRITTEN}
    """


def _is_spark(session: Any) -> bool:
    """dbt-spark hands a SparkSession; dbt-duckdb a DuckDB connection (or a cursor wrapping one)."""
    return type(session).__module__.split(".")[0] == "pyspark"


def _duckdb_api(session: Any, records: Any) -> tuple[Any, float]:
    import duckdb
    from splink import DuckDBAPI

    # A private in-memory database: Splink's __splink__ tables stay out of the warehouse. Same
    # memory limit as crm360's other connections; beyond it DuckDB spills to a scratch folder
    # that is removed when the connection is closed.
    conn = duckdb.connect(":memory:")
    scratch = tempfile.mkdtemp(prefix="crm360-matching-")
    limit = os.environ.get("CRM360_DUCKDB_MEMORY_LIMIT", "2GB")
    conn.execute("set memory_limit = ?", [limit]).fetchall()
    conn.execute("set temp_directory = ?", [scratch]).fetchall()
    # The records are read once, into Arrow, and scanned there by the queries below (prior,
    # term frequencies, profiles): copying them into a table first took 0.6 s more of the
    # model's 7 s at 1,000,000 people (2.07 M records, 0.4 GB).
    conn.register("match_records", records.project(", ".join(RECORD_COLUMNS)).to_arrow_table())
    email_pairs, n = conn.execute(prior_sql("match_records")).fetchall()[0]
    for column in TF_COLUMNS:
        sql = term_frequency_sql("match_records", column)
        conn.execute(f"create table tf_lookup_{column} as {sql}").fetchall()
    for name, sql in profile_sql("match_records").items():
        conn.execute(f"create table {name} as {sql}").fetchall()
    db_api = DuckDBAPI(connection=conn)
    return db_api, prior_from_counts(email_pairs, n)


def _spark_api(session: Any, records: Any) -> tuple[Any, float]:
    from splink import SparkAPI

    records.select(*RECORD_COLUMNS).createOrReplaceTempView("match_records")
    row = session.sql(prior_sql("match_records")).collect()[0]
    for column in TF_COLUMNS:
        session.sql(term_frequency_sql("match_records", column)).createOrReplaceTempView(
            f"tf_lookup_{column}"
        )
    for name, sql in profile_sql("match_records").items():
        session.sql(sql).cache().createOrReplaceTempView(name)
    db_api = SparkAPI(spark_session=session)
    return db_api, prior_from_counts(row[0], row[1])


def _predict(db_api: Any, table: str, prior: float, blocking_rules: list[str]) -> Any:
    linker = Linker(
        db_api.register(table),
        settings(db_api.sql_dialect, prior, blocking_rules),
        log_level=None,
    )
    for column in TF_COLUMNS:
        lookup = db_api.register(f"tf_lookup_{column}")
        linker.table_management.register_term_frequency_lookup(lookup, column)
    return linker.inference.predict(
        threshold_match_probability=MIN_PROBABILITY_WRITTEN, warning_mode="never"
    )


def model(dbt: Any, session: Any) -> Any:
    dbt.config(materialized="table", packages=["splink==5.0.0"])
    records = dbt.ref("int_match_records_prepared")
    make_api = _spark_api if _is_spark(session) else _duckdb_api
    db_api, prior = make_api(session, records)

    # the distinct profiles against each other, and each repeated profile against itself
    # (term frequencies and the prior are the records', computed above)
    profile_pairs = _predict(db_api, "match_profiles", prior, BLOCKING_RULES)
    twin_pairs = _predict(db_api, "match_profile_twins", prior, ["l.profile_base = r.profile_base"])
    # probabilities rounded to 12 places so float noise cannot tell two runs apart
    final_sql = pairs_sql(profile_pairs.physical_name, twin_pairs.physical_name)
    if _is_spark(session):
        return session.sql(final_sql)
    result = db_api.duckdb_con.sql(final_sql).to_arrow_table()
    scratch = db_api.duckdb_con.execute("select current_setting('temp_directory')").fetchall()
    db_api.duckdb_con.close()
    shutil.rmtree(scratch[0][0], ignore_errors=True)
    return result
