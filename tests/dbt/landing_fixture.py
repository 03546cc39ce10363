"""A hand-written landing folder for the dbt build test, in two deliveries.

Small enough to compute every expected number by hand, and shaped to exercise the staging
logic: versions of one contact and one order across files (the newest ``updated_at`` wins, not
the newest file), refunds, a cancelled order, every currency path, a web visitor who logs in
mid-session, and a late web event in the second delivery that joins two earlier sessions.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

CONTACTS_HEADER = (
    "contact_id,first_name,last_name,email,phone,company,address1,address2,city,state,"
    "postal_code,country,date_of_birth,lifecycle_stage,email_opt_out,created_at,updated_at\n"
)

DAY_1: dict[str, str] = {
    "contacts/export-2025-06-01.csv": CONTACTS_HEADER
    + "C-1001,서연,김,Seoyeon.Kim@Example.com ,010-2345-6789,,12 Sejong-daero,,Seoul,,04524,KR,"
    "1990-03-14,Lead,false,2025-01-05T09:12:00Z,2025-05-01T00:00:00Z\n"
    + "C-1001,서연,김,Seoyeon.Kim@Example.com ,010-2345-6789,,12 Sejong-daero,,Seoul,,04524,KR,"
    "1990-03-14,customer,false,2025-01-05T09:12:00Z,2025-06-01T10:00:00+09:00\n"
    + "C-1002,John,Smith,john@example.com,(415) 555-0100,Acme,1 Main St,,Springfield,IL,62701,"
    "US,19851107,Customer,yes,2025-02-01T00:00:00Z,2025-06-01T00:00:00Z\n"
    + "C-1003,Test,Test,test@test.com,0000000000,,,,,,,US,unknown,other,,"
    "2025-03-01T00:00:00Z,2025-03-01T00:00:00Z\n",
    "email/sendgrid-2025-06-01.jsonl": "\n".join(
        json.dumps(e)
        for e in [
            {
                "event": "delivered",
                "email": "seoyeon.kim@example.com",
                "timestamp": 1748736000,
                "sg_event_id": "e-1",
                "sg_message_id": "m1",
                "category": "summer-sale",
            },
            {
                "event": "click",
                "email": "Seoyeon.Kim@example.com",
                "timestamp": 1748739600,
                "sg_event_id": "e-2",
                "sg_message_id": "m1",
                "category": ["summer-sale", "kr"],
                "url": "https://shop.example.com/p/42",
            },
            {
                "event": "bounce",
                "email": "john@example.com",
                "timestamp": 1748736000,
                "sg_event_id": "e-3",
                "sg_message_id": "m2",
                "category": "summer-sale",
                "type": "bounce",
                "reason": "550 no such user",
            },
            {
                "event": "bounce",
                "email": "john@example.com",
                "timestamp": 1748736100,
                "sg_event_id": "e-4",
                "sg_message_id": "m3",
                "type": "blocked",
            },
        ]
    )
    + "\n",
    "calls/calls-2025-06-01.csv": (
        "call_id,direction,customer_number,country,agent_id,queue,started_at,answered_at,"
        "ended_at,disposition,csat\n"
        "CA-77,inbound,+82 10-2345-6789,KR,ag-7,billing,2025-06-01T01:02:03Z,"
        "2025-06-01T01:04:10Z,2025-06-01T01:11:45Z,resolved,5\n"
        "CA-78,Inbound,(415) 555-0100,US,,orders,2025-06-01T02:00:00Z,,"
        "2025-06-01T02:03:00Z,abandoned,\n"
        "CA-79,outbound,415-555-0100,US,ag-9,sales,2025-06-01T03:00:00-07:00,n/a,"
        "2025-06-01T10:05:00Z,TRANSFERRED?,7\n"
    ),
    "web/events-2025-06-01.jsonl": "\n".join(
        json.dumps(e)
        for e in [
            {
                "type": "page",
                "messageId": "w-1",
                "anonymousId": "a-51f",
                "timestamp": "2025-06-01T01:00:00Z",
                "context": {
                    "page": {
                        "url": "https://shop.example.com/summer",
                        "path": "/summer",
                        "referrer": "",
                        "title": "Summer",
                    },
                    "campaign": {"source": "newsletter", "medium": "email", "name": "summer-sale"},
                },
            },
            {
                "type": "page",
                "messageId": "w-2",
                "anonymousId": "a-51f",
                "timestamp": "2025-06-01T01:10:00Z",
                "context": {"page": {"url": "https://shop.example.com/p/42", "path": "/p/42"}},
            },
            {
                "type": "identify",
                "messageId": "w-3",
                "anonymousId": "a-51f",
                "userId": "7001",
                "timestamp": "2025-06-01T01:20:00.120Z",
                "traits": {"email": " Seoyeon.Kim@Example.com", "phone": "+82 10-2345-6789"},
                "context": {
                    "page": {"url": "https://shop.example.com/account", "path": "/account"}
                },
            },
            {
                "type": "track",
                "messageId": "w-4",
                "anonymousId": "a-51f",
                "userId": "7001",
                "event": "Added to Cart",
                "timestamp": "2025-06-01T01:25:00Z",
                "properties": {"product_id": 42},
                "context": {"page": {"url": "https://shop.example.com/p/42", "path": "/p/42"}},
            },
            {
                "type": "page",
                "messageId": "w-5",
                "anonymousId": "a-51f",
                "timestamp": "2025-06-01T02:15:00+00:00",
                "context": {"page": {"url": "https://shop.example.com/", "path": "/"}},
            },
            {
                "type": "page",
                "messageId": "w-6",
                "userId": "8002",
                "timestamp": "2025-06-01T05:00:00Z",
                "context": {"page": {"url": "https://shop.example.com/", "path": "/"}},
            },
        ]
    )
    + "\n",
    "orders/orders-2025-06-01.jsonl": "\n".join(
        json.dumps(o, ensure_ascii=False)
        for o in [
            {
                "id": 5001,
                "order_number": 1001,
                "created_at": "2025-06-01T10:30:00+09:00",
                "updated_at": "2025-06-01T02:00:00Z",
                "email": "seoyeon.kim@example.com",
                "customer": {
                    "id": 7001,
                    "email": "seoyeon.kim@example.com",
                    "first_name": "서연",
                    "last_name": "김",
                },
                "currency": "KRW",
                "total_price": "59000.00",
                "subtotal_price": "59000.00",
                "total_tax": "0.00",
                "total_discounts": "0.00",
                "financial_status": "paid",
                "line_items": [
                    {
                        "product_id": 42,
                        "sku": "MUG-01",
                        "title": "머그컵",
                        "quantity": 2,
                        "price": "29500.00",
                    }
                ],
                "shipping_address": {
                    "first_name": "서연",
                    "last_name": "김",
                    "city": "Seoul",
                    "country_code": "KR",
                },
                "refunds": [],
            },
            {
                "id": 5002,
                "order_number": 1002,
                "created_at": "2025-06-01T09:00:00Z",
                "email": "John@Example.com ",
                "phone": "(415) 555-0100",
                "customer": {"id": 8002, "email": "john@example.com", "phone": "415-555-0100"},
                "currency": "EUR",
                "total_price": "100.50",
                "subtotal_price": "90.00",
                "total_tax": "10.50",
                "total_discounts": "0.00",
                "financial_status": "paid",
                "line_items": [
                    {
                        "product_id": 1,
                        "sku": "TEE-S",
                        "title": "T-shirt",
                        "quantity": 1,
                        "price": "60.00",
                    },
                    {
                        "product_id": 2,
                        "sku": "CAP",
                        "title": "Cap",
                        "quantity": 2,
                        "price": "15.00",
                    },
                ],
                "billing_address": {
                    "first_name": "John",
                    "last_name": "Smith",
                    "address1": "1 Main St",
                    "city": "Springfield",
                    "zip": "62701",
                    "country_code": "US",
                    "phone": "+1 415 555 0100",
                },
                "refunds": [
                    {
                        "created_at": "2025-06-02T00:00:00Z",
                        "transactions": [{"amount": "20.25"}, {"amount": "10.00"}],
                    }
                ],
            },
            {
                "id": 5003,
                "order_number": 1003,
                "created_at": "2025-06-01T12:00:00Z",
                "updated_at": "2025-06-01T13:00:00Z",
                "currency": "USD",
                "total_price": "40.00",
                "financial_status": "voided",
                "cancelled_at": "2025-06-01T13:00:00Z",
                "line_items": [
                    {"product_id": 3, "sku": "PEN", "title": "Pen", "quantity": 4, "price": "10.00"}
                ],
            },
        ]
    )
    + "\n",
}

DAY_2: dict[str, str] = {
    # C-1001 again in a later file, but with an OLDER updated_at: the earlier version still wins.
    "contacts/export-2025-06-02.csv": CONTACTS_HEADER
    + "C-1001,Seoyeon,Kim,seoyeon@old.example,,,,,,,,KR,,subscriber,true,"
    "2025-01-05T09:12:00Z,2025-06-01T00:59:00Z\n"
    + "C-1002,John,Smith,john@example.com,(415) 555-0100,Acme,2 Elm St,,Springfield,IL,62701,"
    "US,19851107,customer,no,2025-02-01T00:00:00Z,2025-06-02T00:00:00Z\n",
    "email/sendgrid-2025-06-02.jsonl": "\n".join(
        json.dumps(e)
        for e in [
            # a redelivery of e-2: ingestion drops it, the fact must not grow
            {
                "event": "click",
                "email": "Seoyeon.Kim@example.com",
                "timestamp": 1748739600,
                "sg_event_id": "e-2",
                "sg_message_id": "m1",
                "category": ["summer-sale", "kr"],
                "url": "https://shop.example.com/p/42",
            },
            {
                "event": "open",
                "email": "john@example.com",
                "timestamp": "1748822400",
                "sg_event_id": "e-5",
                "sg_message_id": "m4",
                "category": ["welcome"],
            },
        ]
    )
    + "\n",
    "calls/calls-2025-06-02.csv": (
        "call_id,direction,customer_number,country,agent_id,queue,started_at,answered_at,"
        "ended_at,disposition,csat\n"
        "CA-80,inbound,010-2345-6789,KR,ag-7,returns,2025-06-02T01:00:00Z,"
        "2025-06-02T01:00:30Z,2025-06-02T01:10:30Z,callback,4\n"
    ),
    "web/events-2025-06-02.jsonl": "\n".join(
        json.dumps(e)
        for e in [
            # late: 01:50 on day 1 bridges 01:25 and 02:15, so two sessions become one
            {
                "type": "page",
                "messageId": "w-7",
                "anonymousId": "a-51f",
                "timestamp": "2025-06-01T01:50:00Z",
                "context": {"page": {"url": "https://shop.example.com/p/43", "path": "/p/43"}},
            },
            {
                "type": "page",
                "messageId": "w-8",
                "anonymousId": "a-9",
                "timestamp": "2025-06-02T10:00:00Z",
                "context": {"page": {"url": "https://shop.example.com/", "path": "/"}},
            },
        ]
    )
    + "\n",
    "orders/orders-2025-06-02.jsonl": json.dumps(
        # 5001 partially refunded: a newer version of the same order
        {
            "id": 5001,
            "order_number": 1001,
            "created_at": "2025-06-01T10:30:00+09:00",
            "updated_at": "2025-06-03T08:00:00Z",
            "email": "seoyeon.kim@example.com",
            "customer": {"id": 7001, "email": "seoyeon.kim@example.com"},
            "currency": "KRW",
            "total_price": "59000.00",
            "subtotal_price": "59000.00",
            "total_tax": "0.00",
            "total_discounts": "0.00",
            "financial_status": "partially_refunded",
            "line_items": [
                {
                    "product_id": 42,
                    "sku": "MUG-01",
                    "title": "머그컵",
                    "quantity": 2,
                    "price": "29500.00",
                }
            ],
            "refunds": [
                {"created_at": "2025-06-03T08:00:00Z", "transactions": [{"amount": "29500.00"}]}
            ],
        },
        ensure_ascii=False,
    )
    + "\n",
}


def write_landing(landing: Path, files: dict[str, str]) -> None:
    """Write files into the landing folder; ``.gz`` names are gzip-compressed."""
    for name, text in files.items():
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = text.encode("utf-8")
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
