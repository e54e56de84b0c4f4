"""Spear wire format: Rails XML and JSON rendering, body parsing, content negotiation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from xml.sax.saxutils import escape

import orjson
import pytest
from starlette.requests import Request

from switchboard.api.spear import envelope
from switchboard.api.spear.envelope import json_object, parse_body, render_list, wants_xml, xml_list, xml_object
from switchboard.domain.errors import Malformed


def req(**headers) -> Request:
    return Request(
        {"type": "http", "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}
    )


def test_xml_object_matches_the_spec_example():
    doc = xml_object(
        "endpoint",
        [
            ("id", 36),
            ("name", "Test endpoint2"),
            ("description", None),
            ("ip_address", "127.0.0.2"),
            ("is_server", False),
            ("created_at", datetime(2009, 1, 14, 5, 7, 54)),
            ("deleted_at", None),
        ],
    )
    assert (
        doc
        == """<?xml version="1.0" encoding="UTF-8"?>
<endpoint>
  <created-at type="datetime">2009-01-14T05:07:54Z</created-at>
  <deleted-at type="datetime" nil="true"></deleted-at>
  <description nil="true"></description>
  <id type="integer">36</id>
  <ip-address>127.0.0.2</ip-address>
  <is-server type="boolean">false</is-server>
  <name>Test endpoint2</name>
</endpoint>
"""
    )


def test_xml_escapes_and_lists():
    assert "<name>a &lt;b&gt; &amp; c</name>" in xml_object("x", [("name", "a <b> & c")])
    assert xml_list("endpoints", "endpoint", []).endswith('<endpoints type="array"/>\n')
    assert '<users type="array">\n  <user>\n    <id type="integer">1</id>' in xml_list("users", "user", [[("id", 1)]])


def test_json_dates():
    assert json_object([("created_at", datetime(2013, 11, 23, 16, 28, 22))]) == {"created_at": "2013-11-23 16:28:22"}


def test_json_list_bytes_are_those_of_json_object():
    """render_list's JSON (datetimes formatted in orjson's callback, naive ones remembered) is byte
    for byte what json_object of each record gives, on first and repeated rendering, with aware
    datetimes that are equal instants but read differently, dates and times."""
    base = datetime(2024, 2, 29, 23, 59, 59, 999_999)
    records = [
        (
            ("id", n),
            ("name", f"ep {n} \u00e9\u00fc <&>"),
            ("description", None if n % 2 else "d"),
            ("is_server", n % 3 == 0),
            ("score", n / 7),
            ("created_at", base + timedelta(seconds=n, microseconds=n)),
            ("deleted_at", None if n % 4 else base),
        )
        for n in range(50)
    ]
    records.append(
        (
            ("utc", datetime(2020, 1, 1, 12, tzinfo=UTC)),
            ("plus_one", datetime(2020, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))),  # == utc
            ("day", date(2020, 1, 2)),
            ("at", time(1, 2, 3)),
            ("year_one", datetime(1, 1, 1)),
        )
    )
    want = orjson.dumps({"collection": [json_object(f) for f in records], "metadata": {"count": len(records)}})
    for _ in range(2):  # the second time from the remembered texts
        assert render_list(req(accept="application/json"), "endpoints", "endpoint", records).body == want
    assert b'"utc":"2020-01-01 12:00:00+00:00","plus_one":"2020-01-01 13:00:00+01:00"' in want
    assert b'"created_at":"2024-02-29 23:59:59"' in want and b'"at":"01:02:03"' in want


def _reference_xml_element(name, v, indent):
    """The XML element writer before its tags were kept (the Rails to_xml forms)."""
    tag = name.replace("_", "-")
    if v is None:
        typ = ' type="datetime"' if name.endswith(("_at", "_date", "_since")) else ""
        return f'{indent}<{tag}{typ} nil="true"></{tag}>'
    if isinstance(v, bool):
        return f'{indent}<{tag} type="boolean">{"true" if v else "false"}</{tag}>'
    if isinstance(v, int):
        return f'{indent}<{tag} type="integer">{v}</{tag}>'
    if isinstance(v, float):
        return f'{indent}<{tag} type="float">{v!r}</{tag}>'
    if isinstance(v, datetime):
        return f'{indent}<{tag} type="datetime">{v.isoformat("T", "seconds")}Z</{tag}>'
    return f"{indent}<{tag}>{escape(str(v))}</{tag}>"


def _reference_xml_list(root, item, records):
    def record(fields, indent):
        inner = indent + "  "
        body = "\n".join(_reference_xml_element(k, v, inner) for k, v in sorted(fields, key=lambda kv: kv[0]))
        return f"{indent}<{item}>\n{body}\n{indent}</{item}>"

    parts = [record(f, "  ") for f in records]
    if not parts:
        return envelope.XML_DECL + f'<{root} type="array"/>\n'
    return envelope.XML_DECL + f'<{root} type="array">\n' + "\n".join(parts) + f"\n</{root}>\n"


def test_xml_list_text_is_the_reference_one():
    base = datetime(2024, 2, 29, 23, 59, 59, 999_999)
    records = [
        (
            ("name", f'ep {n} <a&b> "q" \u00e9'),
            ("id", n),
            ("is_server", n % 2 == 0),
            ("alert_threshold", n / 3),
            ("created_at", base + timedelta(seconds=n)),
            ("deleted_at", None),
            ("description", None),
            ("last_login_date", None if n % 2 else base),
            ("alerting_since", None),
            ("when", date(2020, 1, n % 28 + 1)),
            ("utc", datetime(2020, 1, 1, 12, tzinfo=UTC)),
            ("plus_one", datetime(2020, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))),
            ("inf", float("inf")),
        )
        for n in range(30)
    ]
    for _ in range(2):
        assert xml_list("end_points", "end_point", records) == _reference_xml_list("end_points", "end_point", records)
    assert xml_list("x", "y", []) == _reference_xml_list("x", "y", [])


def test_remembered_datetimes_are_bounded(monkeypatch):
    monkeypatch.setattr(envelope, "_SECONDS_MAX", 3)
    envelope._SECONDS.clear()
    days = [datetime(2020, 1, d) for d in range(1, 8)]
    assert envelope.dumps_records(days) == orjson.dumps([d.isoformat(" ") for d in days])
    assert 0 < len(envelope._SECONDS) <= 3


@pytest.mark.parametrize(
    "headers,xml",
    [
        ({"accept": "text/xml"}, True),
        ({"accept": "application/json"}, False),
        ({}, False),
        ({"content-type": "application/xml"}, True),
        ({"accept": "application/xml, application/json"}, True),
        ({"accept": "application/json, text/xml"}, False),
        ({"accept": "*/*", "content-type": "text/xml"}, True),
    ],
)
def test_negotiation(headers, xml):
    assert wants_xml(req(**headers)) is xml


def test_parse_bodies():
    assert parse_body(b'{"endpoint": {"name": "a"}}', "application/json", "endpoint") == {"name": "a"}
    assert parse_body(b'{"name": "a"}', "application/json", "endpoint") == {"name": "a"}
    assert parse_body(b"", "application/json", "endpoint") == {}
    x = parse_body(
        b'<voip-test><server-id type="integer">4</server-id><codec nil="true"/>'
        b'<ok type="boolean">true</ok></voip-test>',
        "application/xml",
        "voip_test",
    )
    assert x == {"server_id": 4, "codec": None, "ok": True}
    for bad, ct in [
        (b"{", "application/json"),
        (b"[1]", "application/json"),
        (b'{"endpoint": 3}', ""),
        (b"<endpoint>", "application/xml"),
        (b"<other/>", "application/xml"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><endpoint>&a;</endpoint>', "application/xml"),
        (b"<endpoint><name><b>x</b></name></endpoint>", "application/xml"),
    ]:
        with pytest.raises(Malformed):
            parse_body(bad, ct, "endpoint")
