"""The servers spec (voipspear-servers-api.txt), example by example, then creation and visibility."""

from __future__ import annotations

import re

from defusedxml.ElementTree import fromstring

from tests.conftest import as_user, new_user

PLAIN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
SERVER_KEYS = {
    "id",
    "name",
    "ip_address",
    "description",
    "private",
    "region",
    "version",
    "last_login_date",
    "last_login_ip",
    "created_at",
    "deleted_at",
}


def community(admin, **fields) -> dict:
    body = {
        "name": "New York",
        "ip_address": "162.243.87.191",
        "region": "North America",
        "description": "Community server in New York, USA.",
        **fields,
    }
    r = admin.post("/servers", json={"server": body})
    assert r.status_code == 201, r.text
    return r.json()


def test_create_list_show_patch_cancel_activate(server, admin):
    created = community(admin)
    assert set(created) == SERVER_KEYS | {"agent_key"}
    assert created["private"] is False and len(created["agent_key"]) >= 32
    assert PLAIN.match(created["created_at"]) and created["deleted_at"] is None
    sid = created["id"]

    # Show: the spec's fields, no agent key ever again
    shown = admin.get(f"/servers/{sid}").json()
    assert set(shown) == SERVER_KEYS
    assert shown["name"] == "New York" and shown["last_login_date"] is None

    # List: {"collection": [...], "metadata": {"count": N}}
    listed = admin.get("/servers").json()
    assert set(listed) == {"collection", "metadata"}
    assert listed["metadata"]["count"] == len(listed["collection"])
    assert sid in [s["id"] for s in listed["collection"]]

    # PATCH /servers/{id} args {"server": {"name": "Carlos server"}}
    r = admin.patch(f"/servers/{sid}", json={"server": {"name": "Carlos server"}})
    assert r.status_code == 200 and r.json()["name"] == "Carlos server"
    assert r.json()["ip_address"] == "162.243.87.191"

    # DELETE cancels: deleted_at set, out of the default list, in status=cancelled
    r = admin.delete(f"/servers/{sid}")
    assert r.status_code == 200 and PLAIN.match(r.json()["deleted_at"])
    assert sid not in [s["id"] for s in admin.get("/servers").json()["collection"]]
    assert sid in [s["id"] for s in admin.get("/servers", params={"status": "cancelled"}).json()["collection"]]

    # PATCH .../activate re-activates and clears deleted_at
    r = admin.patch(f"/servers/{sid}/activate")
    assert r.status_code == 200 and r.json()["deleted_at"] is None


def test_filters(server, admin):
    a = community(admin, name="London", ip_address="37.235.54.150", region="Europe")
    b = community(admin, name="Hong Kong", ip_address="158.255.208.62", region="Asia Pacific")
    p = community(admin, name="Private lab", ip_address="lab.example.net", private=True)
    assert p["private"] is True

    def names(**params):
        return [s["name"] for s in admin.get("/servers", params=params).json()["collection"]]

    assert names(name="LONDON") == ["London"]
    assert names(ip_address="158.255") == ["Hong Kong"]
    assert "Private lab" not in names(private="false")
    assert set(names(community="false")) >= {"Private lab"} and "London" not in names(community="false")
    assert names(community="false", private="false") == []
    assert admin.get("/servers", params={"status": "bogus"}).status_code == 422
    assert admin.get("/servers", params={"private": "maybe"}).status_code == 422
    assert admin.get("/servers", headers={"Accept": "application/xml"}).text.count("<server>") >= 3
    assert a["id"] != b["id"]


def test_visibility_and_who_may_change(server, admin):
    pub = community(admin, name="Community A")
    u1, u2 = new_user(admin), new_user(admin)
    with as_user(server, u1) as c1, as_user(server, u2) as c2:
        # a user creates a private server only
        r = c1.post("/servers", json={"server": {"name": "My probe", "ip_address": "10.0.0.5"}})
        assert r.status_code == 201 and r.json()["private"] is True and r.json()["agent_key"]
        mine = r.json()["id"]
        assert (
            c1.post("/servers", json={"server": {"name": "x", "ip_address": "10.0.0.6", "private": False}}).status_code
            == 403
        )
        # users read community servers, never change them
        assert c1.get(f"/servers/{pub['id']}").status_code == 200
        assert c1.patch(f"/servers/{pub['id']}", json={"server": {"name": "hijack"}}).status_code == 403
        assert c1.delete(f"/servers/{pub['id']}").status_code == 403
        assert admin.get(f"/servers/{pub['id']}").json()["name"] == "Community A"
        # private servers are invisible to other users
        assert c2.get(f"/servers/{mine}").status_code == 404
        assert c2.patch(f"/servers/{mine}", json={"server": {"name": "x"}}).status_code == 404
        assert mine not in [s["id"] for s in c2.get("/servers").json()["collection"]]
        assert mine in [s["id"] for s in c1.get("/servers").json()["collection"]]
        assert mine in [s["id"] for s in admin.get("/servers").json()["collection"]]
        # the owner changes, cancels and re-activates their own
        assert c1.patch(f"/servers/{mine}", json={"server": {"name": "Renamed"}}).json()["name"] == "Renamed"
        assert c1.delete(f"/servers/{mine}").json()["deleted_at"] is not None
        assert c1.patch(f"/servers/{mine}/activate").json()["deleted_at"] is None


def test_server_validation_and_xml(server, admin):
    r = admin.post("/servers", json={"server": {"name": "", "ip_address": "bad host name"}})
    assert r.status_code == 422 and len(r.json()["errors"]) == 2
    r = admin.post(
        "/servers",
        headers={"Content-Type": "application/xml", "Accept": "application/xml"},
        content=b"<server><name>Miami</name><ip-address>104.207.145.85</ip-address>"
        b'<private type="boolean">false</private></server>',
    )
    assert r.status_code == 201
    doc = fromstring(r.content)
    assert doc.tag == "server" and doc.find("agent-key").text
    assert doc.find("private").get("type") == "boolean"
    assert r.headers["location"].endswith(f"/servers/{doc.find('id').text}")
    assert admin.get("/servers/424242").status_code == 404
    assert admin.patch("/servers/424242", json={"server": {"name": "x"}}).status_code == 404
