"""res_parking.conf lots, their defaults and the dialplan res_parking generates (asterisk/parking.py)."""

from __future__ import annotations

import pytest

from switchboard.asterisk import conf, dialplan, parking


def test_without_a_file_the_default_lot_has_res_parkings_defaults_and_parkext_700():
    lots = parking.lots(None)
    assert list(lots) == ["default"]
    d = lots["default"]
    assert (d.parkext, d.context, d.start, d.stop, d.parkingtime) == ("700", "parkedcalls", 701, 750, 45)
    assert (d.comebacktoorigin, d.comebackcontext, d.comebackdialtime, d.findslot) == (
        True,
        "parkedcallstimeout",
        30,
        "first",
    )


def test_configured_lots_and_an_implicit_default_first():
    cf = conf.parse(
        "[general]\n[edvina]\nparkpos => 800-850\ncontext => edvina_park\nfindslot => next\n"
        "comebacktoorigin = no\ncomebackdialtime = 90\nparkedmusicclass = edvina\n"
    )
    lots = parking.lots(cf)
    assert list(lots) == ["default", "edvina"]
    e = lots["edvina"]
    assert (e.parkext, e.start, e.stop, e.findslot, e.comebacktoorigin, e.comebackdialtime) == (
        "",
        800,
        850,
        "next",
        False,
        90,
    )
    assert e.parkedmusicclass == "edvina"
    # a lot without parkext generates nothing; the default lot's context and park-dial are provided
    assert parking.context_names(cf) == {"parkedcalls", "park-dial"}


@pytest.mark.parametrize("body", ["parkpos => 720-701", "parkpos => 701", "parkingtime => soon", "findslot => last"])
def test_invalid_lots_are_refused(body):
    with pytest.raises(conf.ConfError):
        parking.check(conf.parse(f"[lot]\n{body}\n"))


def test_generated_extensions_park_spaces_and_hints():
    cf = conf.parse(
        "[default]\nparkext => 700\nparkpos => 701-703\nparkinghints => yes\n"
        "[vip]\nparkext => 800\nparkpos => 801-802\ncontext => vip_park\nparkext_exclusive => yes\n"
    )
    ctxs = parking.contexts(parking.lots(cf))
    assert set(ctxs) == {"parkedcalls", "vip_park", "park-dial"}
    by = {e.exten: e for e in ctxs["parkedcalls"].extensions}
    assert (by["700"].priorities[0].app, by["700"].priorities[0].args) == ("Park", "")
    assert (by["702"].priorities[0].app, by["702"].priorities[0].args) == ("ParkedCall", "default,702")
    assert by["701"].hint == "park:701@parkedcalls" and "704" not in by
    vip = {e.exten: e for e in ctxs["vip_park"].extensions}
    assert vip["800"].priorities[0].args == "vip" and vip["801"].hint is None


def test_an_extensions_conf_may_include_the_generated_contexts_only_when_provided():
    text = "[internal]\ninclude => parkedcalls\nexten => 1,1,NoOp()\n"
    with pytest.raises(conf.ConfError):
        dialplan.validate(text)
    assert dialplan.validate(text, {"parkedcalls"}).contexts["internal"].includes == ["parkedcalls"]


def test_dial_strings_and_flat_names():
    assert parking.dial_string("PJSIP/alice-0000001f") == "PJSIP/alice"
    assert parking.dial_string("PJSIP/my-phone-0000001f") == "PJSIP/my-phone"
    assert parking.flat("PJSIP/alice") == "PJSIP_alice"
