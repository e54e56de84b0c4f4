"""jade CDRs (Switchboard's addition: jade's document has no CDR route; this one follows jade's
style). Admin only, under `/v1` and bare like every jade route.

- `GET /admin/cdr/cdrs`: call detail records, newest first, as
  `result: {"list": [<cdr>...], "page": N, "page_size": N, "total": N}`.
  Query: `page` (1-based, default 1), `page_size` (1-1000, default 100); filters (exact match,
  combined with AND): `src`, `dst`, `disposition` (ANSWERED, NO ANSWER, BUSY, FAILED,
  CONGESTION; any case), `linkedid`, `since` / `until` (RFC 3339 timestamps: calls that started
  at or after `since` and before `until`).
  `Accept: text/csv` or `?format=csv`: the same page as Asterisk's cdr-csv Master.csv lines
  (text/csv; no header line; the matching total in `X-Total-Count`). `?format=json` forces JSON.
- `GET /admin/cdr/cdrs/{uniqueid}`: one record by the caller channel's unique id (CSV as above);
  unknown → 404.

A CDR object has Asterisk's field names: id, accountcode, src, dst, dcontext, clid, channel,
dstchannel, lastapp, lastdata, start, answer (null when unanswered), end (jade timestamps, UTC),
duration, billsec (integers, seconds), disposition, amaflags, uniqueid, linkedid, userfield,
peeraccount, sequence. Rules: domain/cdrs.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response

from switchboard.api.common import ctx
from switchboard.api.jade import envelope
from switchboard.api.jade.routing import router
from switchboard.domain.errors import Invalid

api = router("cdr")

CSV_TYPE = "text/csv; charset=utf-8"
_CSV_DOC = {200: {"content": {"text/csv": {}}, "description": "JSON envelope, or Master.csv lines (Accept: text/csv)"}}


def view(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("start", "answer", "end"):
        out[key] = envelope.ts(row[key])
    return out


def _wants_csv(request: Request, fmt: str | None) -> bool:
    if fmt is not None:
        f = fmt.strip().lower()
        if f not in ("csv", "json"):
            raise Invalid("format", "must be csv or json")
        return f == "csv"
    return "text/csv" in (request.headers.get("accept") or "").lower()


def _int(value: str | None, field: str, default: int) -> int:
    if value is None:
        return default
    v = value.strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 9:
        raise Invalid(field, "must be a positive integer")
    return int(v)


def _instant(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        ns = envelope.parse_timestamp(value)
    except Invalid:
        raise Invalid(field, "must be an RFC 3339 timestamp like 2018-03-30T08:30:02.364443446Z") from None
    try:
        return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise Invalid(field, "is out of range") from None


def _csv(services, rows: list[dict], total: int) -> Response:
    return Response(
        services.cdrs.csv(rows),
        200,
        media_type=CSV_TYPE,
        headers={"X-Total-Count": str(total), "Content-Disposition": 'attachment; filename="Master.csv"'},
    )


@api.get(
    "/admin/cdr/cdrs",
    summary="Call detail records, newest first (Switchboard's addition; ?page=&page_size=, filters, CSV)",
    description="Query: `page` (1-based, default 1), `page_size` (1-1000, default 100); filters `src`, `dst`, "
    "`disposition` (ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION), `linkedid`, `since`/`until` (RFC 3339; "
    "start time, since inclusive, until exclusive). `result`: `list`, `page`, `page_size`, `total`. "
    "`Accept: text/csv` or `format=csv`: the page as Asterisk cdr-csv Master.csv lines (no header; "
    "X-Total-Count holds the total).",
    responses=_CSV_DOC,
)
async def cdrs_list(
    request: Request,
    page: str | None = None,
    page_size: str | None = None,
    src: str | None = None,
    dst: str | None = None,
    disposition: str | None = None,
    linkedid: str | None = None,
    since: str | None = None,
    until: str | None = None,
    format: str | None = None,  # noqa: A002 - the query parameter's name
):
    services, conn, _ = ctx(request)
    as_csv = _wants_csv(request, format)
    n, size = _int(page, "page", 1), _int(page_size, "page_size", 100)
    rows, total = await services.cdrs.list(
        conn,
        page=n,
        size=size,
        src=src,
        dst=dst,
        disposition=disposition,
        linkedid=linkedid,
        since=_instant(since, "since"),
        until=_instant(until, "until"),
    )
    if as_csv:
        return _csv(services, rows, total)
    return envelope.respond(
        {"list": [view(r) for r in rows], "page": n, "page_size": size, "total": total}, stamped=True
    )


@api.get(
    "/admin/cdr/cdrs/{uniqueid}",
    summary="One call detail record by unique id (Switchboard's addition; CSV with Accept: text/csv)",
    responses=_CSV_DOC,
)
async def cdrs_show(request: Request, uniqueid: str, format: str | None = None):  # noqa: A002
    services, conn, _ = ctx(request)
    as_csv = _wants_csv(request, format)
    row = await services.cdrs.get(conn, uniqueid)
    if as_csv:
        return _csv(services, [row], 1)
    return envelope.respond(view(row), stamped=True)
