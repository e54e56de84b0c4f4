"""The dialplan calls run: extensions.conf with res_parking's contexts merged in (engine/runtime.py)."""

from __future__ import annotations

from switchboard.asterisk import conf, dialplan
from switchboard.engine.runtime import Loaded, Pbx


def _pbx(extensions: str, res_parking: str) -> Pbx:
    pbx = Pbx()
    pbx.config["dialplan"] = Loaded(dialplan.validate(extensions, {"parkedcalls", "park-dial"}), 1)
    pbx.config["park"] = Loaded(conf.parse(res_parking), 1)
    return pbx


def test_the_park_extension_and_spaces_are_found_through_an_include():
    pbx = _pbx("[internal]\ninclude => parkedcalls\n", "[default]\nparkext => 700\nparkpos => 701-702\n")
    plan = pbx.dialplan()
    assert plan.find("internal", "700", 1).step.app == "Park"
    assert plan.find("internal", "702", 1).step.args == "default,702"
    assert plan.find("internal", "703", 1) is None
    assert "park-dial" in plan.contexts
    assert pbx.dialplan() is plan  # built once per load


def test_extensions_conf_wins_in_a_context_it_shares_and_is_not_changed():
    text = "[parkedcalls]\nexten => 701,1,Playback(mine)\n"
    pbx = _pbx(text, "[default]\nparkext => 700\nparkpos => 701-702\n")
    plan = pbx.dialplan()
    assert plan.find("parkedcalls", "701", 1).step.app == "Playback"
    assert plan.find("parkedcalls", "702", 1).step.app == "ParkedCall"
    assert len(pbx.config["dialplan"].value.contexts["parkedcalls"].extensions) == 1


def test_unloaded_res_parking_generates_nothing_and_parked_spaces_are_device_states():
    pbx = _pbx("[internal]\nexten => 1,1,NoOp()\n", "[default]\nparkext => 700\n")
    pbx.apply_module("res_parking", False)
    assert pbx.parking_lots() == {} and "parkedcalls" not in pbx.dialplan().contexts
    assert pbx.device_state("park:701@parkedcalls") == "NOT_INUSE"
