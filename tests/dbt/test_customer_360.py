"""marts.customer_360 and marts.customer_touchpoints on the shared pipeline run (tests/conftest.py).

What is checked against what: customers against identity_map, money against staging, channel
counts against their facts, survivors against the generator's ground truth, and the second
(incremental) run against the first.
"""

from __future__ import annotations

from collections import defaultdict

import duckdb
import pytest

from tests.pipeline import query, scalar, truth_people, truth_records


def test_one_row_per_customer_of_identity_map(pipeline):
    rows, customers, missing, extra = query(
        pipeline["warehouse"],
        """
        select
            (select count(*) from marts.customer_360),
            (select count(distinct customer_id) from marts.identity_map),
            (select count(*) from (select customer_id from marts.identity_map
                                   except select customer_id from marts.customer_360)),
            (select count(*) from (select customer_id from marts.customer_360
                                   except select customer_id from marts.identity_map))
        """,
    )[0]
    assert customers > 0
    assert (rows, missing, extra) == (customers, 0, 0)


def test_every_record_of_identity_map_is_one_touchpoint(pipeline):
    records, touchpoints, matched, summed = query(
        pipeline["warehouse"],
        """
        select
            (select count(*) from marts.identity_map),
            (select count(*) from marts.customer_touchpoints),
            (select count(*) from marts.customer_touchpoints t
             join marts.identity_map m
               on t.record_key = m.record_key and t.customer_id = m.customer_id),
            (select sum(touchpoint_count) from marts.customer_360)
        """,
    )[0]
    assert records == touchpoints == matched == summed


def test_net_revenue_adds_up_to_staging(pipeline):
    in_360, in_staging = query(
        pipeline["warehouse"],
        """
        select
            (select sum(net_revenue_reporting) from marts.customer_360),
            (select sum(net_revenue_reporting) from staging.stg_orders__orders)
        """,
    )[0]
    assert in_staging > 0
    assert in_360 == in_staging


@pytest.mark.parametrize(
    ("column", "fact_sql"),
    [
        ("email_event_count", "select count(*) from marts.fct_email_events"),
        ("call_count", "select count(*) from marts.fct_calls"),
        ("web_event_count", "select count(*) from marts.fct_web_events"),
        ("page_view_count", "select count(*) from marts.fct_web_events where event_type = 'page'"),
        ("web_session_count", "select count(*) from intermediate.int_web_sessions_built"),
        ("order_count + cancelled_order_count", "select count(*) from staging.stg_orders__orders"),
    ],
)
def test_channel_counts_add_up_to_their_facts(pipeline, column, fact_sql):
    in_360 = scalar(pipeline["warehouse"], f"select sum({column}) from marts.customer_360")
    in_fact = scalar(pipeline["warehouse"], fact_sql)
    assert in_fact > 0
    assert in_360 == in_fact


def person_customers(pipeline) -> dict[str, set[str]]:
    """Ground-truth person -> the customer_ids identity_map gave that person's records."""
    mapped = {
        (source, record_id): customer
        for source, record_id, customer in query(
            pipeline["warehouse"],
            "select source, source_record_id, customer_id from marts.identity_map",
        )
    }
    customers: dict[str, set[str]] = defaultdict(set)
    for r in truth_records(pipeline["landing"]):
        customer = mapped.get((r["source"], r["source_record_id"]))
        if r["expected"] == "loaded" and r["person_id"] and customer:
            customers[r["person_id"]].add(customer)
    return customers


def pure_customers(pipeline) -> dict[str, str]:
    """person_id -> customer_id for people resolved into exactly one customer holding no one
    else's records: the people whose survivors must be their own values."""
    by_person = person_customers(pipeline)
    people_of: dict[str, set[str]] = defaultdict(set)
    for person, customers in by_person.items():
        for customer in customers:
            people_of[customer].add(person)
    return {
        person: next(iter(customers))
        for person, customers in by_person.items()
        if len(customers) == 1 and people_of[next(iter(customers))] == {person}
    }


def survivors(pipeline) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in query(
            pipeline["warehouse"],
            "select customer_id, email, phone, first_name, last_name, is_known "
            "from marts.customer_360",
        )
    }


def test_a_known_buyer_shows_their_true_email_and_phone(pipeline):
    """The first person (by id) who bought with a shop account and has a mobile: their order's
    customer object carries their first email and their mobile, the most trusted values."""
    people = {p["person_id"]: p for p in truth_people(pipeline["landing"])}
    pure = pure_customers(pipeline)
    ordered_with_account = {
        customer
        for (customer,) in query(
            pipeline["warehouse"],
            "select distinct m.customer_id from staging.stg_orders__orders o "
            "join marts.identity_map m on m.source = 'orders' and m.source_record_id = o.order_id "
            "where o.customer_id is not null and o.customer_phone_e164 is not null",
        )
    }
    person = next(
        p
        for pid, p in sorted(people.items())
        if pid in pure and pure[pid] in ordered_with_account and p["emails"] and p["phones"]
    )
    email, phone, first_name, last_name, is_known = survivors(pipeline)[pure[person["person_id"]]]
    assert is_known
    assert email == person["emails"].split("|")[0]
    assert phone in person["phones"].split("|")
    assert (first_name, last_name) == (person["first_name"], person["last_name"])


def test_survivors_are_the_persons_own_values(pipeline):
    """Over every person resolved cleanly, the surviving email and phone are theirs (a B2B
    contact may carry the company's shared inbox); a few phones are lost to ingestion's
    number parsing, hence not 100%."""
    people = {p["person_id"]: p for p in truth_people(pipeline["landing"])}
    survived = survivors(pipeline)
    emails_ok = emails = phones_ok = phones = 0
    for person, customer in pure_customers(pipeline).items():
        p = people[person]
        email, phone = survived[customer][:2]
        if email:
            emails += 1
            emails_ok += email in set(p["emails"].split("|")) | {p["company_inbox"]}
        if phone:
            phones += 1
            phones_ok += phone in set(p["phones"].split("|"))
    assert emails > 100 and phones > 100
    assert emails_ok / emails >= 0.99
    assert phones_ok / phones >= 0.97


def test_anonymous_visitors_are_not_known(pipeline):
    anonymous, anonymous_known, named_unknown = query(
        pipeline["warehouse"],
        """
        with records as (
            select
                m.customer_id,
                m.source <> 'web'
                    or w.user_id is not null
                    or w.traits_email_normalized is not null
                    or w.traits_phone_e164 is not null as names_person
            from marts.identity_map m
            left join marts.fct_web_events w
                on m.source = 'web' and m.source_record_id = w.web_event_id
        ),
        customers as (
            select customer_id, bool_or(names_person) as names_person
            from records group by customer_id
        )
        select
            count(*) filter (where not c.names_person),
            count(*) filter (where not c.names_person and s.is_known),
            count(*) filter (where c.names_person and not s.is_known)
        from customers c join marts.customer_360 s using (customer_id)
        """,
    )[0]
    assert anonymous > 0
    assert (anonymous_known, named_unknown) == (0, 0)


def test_never_identified_browsers_are_anonymous_customers(pipeline):
    """People the generator never lets log in or buy: their web-only customers are anonymous."""
    people = {p["person_id"]: p for p in truth_people(pipeline["landing"])}
    web_only = defaultdict(set)
    records = [r for r in truth_records(pipeline["landing"]) if r["expected"] == "loaded"]
    sources_of = defaultdict(set)
    for r in records:
        sources_of[r["person_id"]].add(r["source"])
    for person, sources in sources_of.items():
        if person and sources == {"web"} and people[person]["archetype"] == "never_identified":
            web_only[person] = sources
    customers = person_customers(pipeline)
    survived = survivors(pipeline)
    checked = [survived[c][4] for person in web_only for c in customers[person]]
    assert checked, "the generated data has no never-identified web-only visitor"
    assert not any(checked)


def test_second_run_leaves_the_timeline_as_it_was(pipeline):
    """The second run loads nothing new: the incremental touchpoints must not change."""
    columns = (
        "record_key, customer_id, touchpoint_at, channel, event_type, source_record_id, "
        "order_net_revenue_reporting, call_disposition, url"
    )
    with duckdb.connect(str(pipeline["warehouse"]), read_only=True) as conn:
        conn.execute(f"attach '{pipeline['after_first']}' as first_run (read_only)")
        changed = conn.execute(
            f"select count(*) from ((select {columns} from marts.customer_touchpoints "
            f"except select {columns} from first_run.marts.customer_touchpoints) union all "
            f"(select {columns} from first_run.marts.customer_touchpoints "
            f"except select {columns} from marts.customer_touchpoints))"
        ).fetchone()[0]
        count = conn.execute("select count(*) from marts.customer_touchpoints").fetchone()[0]
    assert count > 0
    assert changed == 0
