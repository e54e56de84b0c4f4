"""The dialplan executor driven by a phone written here: a Channel that records what it was asked and presses
scripted DTMF digits with real asyncio timing (short timeouts through TIMEOUT(...))."""

from __future__ import annotations

import asyncio
import logging

import pytest

from switchboard.asterisk.dialplan import validate
from switchboard.engine.channel import UP, Channel, ChannelGone
from switchboard.engine.dialplan_exec import APPLICATIONS, application, run

FAST = "same => n,Set(TIMEOUT(digit)=0.15)\nsame => n,Set(TIMEOUT(response)=0.3)\n"


class Phone(Channel):
    """The caller's side: records operations, presses digits at given times, answers Dial as scripted."""

    def __init__(self, *, play_seconds=0.02, dial_status="NOANSWER", missing=(), bridge_seconds=0.02, **kw):
        kw.setdefault("caller_num", "100")
        kw.setdefault("caller_name", "Alice")
        super().__init__("alice", **kw)
        self.ops: list[tuple] = []
        self.play_seconds, self.dial_status, self.missing = play_seconds, dial_status, set(missing)
        self.bridge_seconds = bridge_seconds
        self.hangup_in_bridge = False

    def press(self, digits: str, at: float = 0.0, gap: float = 0.02) -> None:
        loop = asyncio.get_running_loop()
        for i, d in enumerate(digits):
            loop.call_later(at + i * gap, self.digits.put_nowait, d)

    def hang_up_at(self, at: float) -> None:
        asyncio.get_running_loop().call_later(at, self.mark_gone, 16)

    def named(self, op):
        return [o[1] for o in self.ops if o[0] == op]

    async def _wait(self, seconds):
        try:
            await asyncio.wait_for(self.gone.wait(), seconds)
        except TimeoutError:
            return
        raise ChannelGone(self.name)

    async def answer(self):
        self.check()
        self.ops.append(("answer",))
        self.set_state(UP)

    async def ringing(self):
        self.check()
        self.ops.append(("ringing",))

    async def progress(self):
        self.check()
        self.ops.append(("progress",))

    async def hangup(self, cause=16):
        self.check()
        self.ops.append(("hangup", cause))
        self.mark_gone(cause)

    def sound_exists(self, name):
        return name not in self.missing

    async def play(self, names, *, digits=""):
        self.check()
        loop = asyncio.get_running_loop()
        for name in names:
            self.ops.append(("play", name))
            end = loop.time() + self.play_seconds
            while (left := end - loop.time()) > 0:
                if not digits:
                    await self._wait(left)
                    break
                d = await self.get_digit(left)
                if d and d in digits:
                    return d
        return ""

    async def get_digit(self, timeout):
        self.check()
        get = asyncio.ensure_future(self.digits.get())
        gone = asyncio.ensure_future(self.gone.wait())
        done, pending = await asyncio.wait({get, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        if get in done:
            return get.result()
        self.check()
        return ""

    async def music_on_hold(self, klass="default", seconds=None):
        self.check()
        self.ops.append(("moh", klass, seconds))
        await self._wait(seconds)

    async def echo(self):
        self.check()
        self.ops.append(("echo",))
        while await self.get_digit(None) != "#":
            pass

    async def record(self, path, *, silence=0, max_seconds=0, terminator="#"):
        self.check()
        self.ops.append(("record", path, silence, max_seconds, terminator))
        loop = asyncio.get_running_loop()
        end = loop.time() + (max_seconds or 3600)
        while (left := end - loop.time()) > 0:
            try:
                d = await self.get_digit(left)
            except ChannelGone:
                return "hangup"
            if d and d in terminator:
                return "dtmf"
        return "timeout"

    async def dial(self, targets, timeout, options):
        self.check()
        self.ops.append(("dial", targets, timeout, options))
        status = self.dial_status
        self.variables["DIALSTATUS"] = status
        if status == "ANSWER":
            if self.state != UP:
                self.set_state(UP)
            if self.hangup_in_bridge:
                self.mark_gone(16)
                return status
            await self._wait(self.bridge_seconds)
        return status


async def call(text, exten="s", context="default", phone=None, **kw):
    phone = phone or Phone()
    runner = await asyncio.wait_for(run(phone, validate(text), context, exten, **kw), 5)
    return phone, runner


# ---- basics ----------------------------------------------------------------------------------------


async def test_steps_variables_and_hangup_cause(caplog):
    caplog.set_level(logging.DEBUG, "switchboard.dialplan")
    phone, runner = await call(
        "[globals]\nG=glob\n[default]\n"
        "exten => 5551234,1,Answer()\n"
        "same => n,Set(X=${EXTEN:3})\n"
        "same => n,Set(__INH=yes)\n"
        "same => n,Set(CALLERID(name)=Bob)\n"
        "same => n,Set(Y=${CALLERID(all)}|${CONTEXT}|${PRIORITY}|${G}|${LEN(${X})}|${IF($[${X} > 1000]?big:small)})\n"
        "same => n,Set(GLOBAL(G2)=${UNIQUEID})\n"
        "same => n,Hangup(17)\n",
        exten="5551234",
    )
    assert phone.variables["X"] == "1234"
    assert phone.variables["INH"] == "yes" and runner.inherit == {"INH": 2}
    assert phone.variables["Y"] == '"Bob" <100>|default|5|glob|4|big'
    assert runner.globals["G2"] == phone.uniqueid
    assert phone.ops == [("answer",), ("hangup", 17)]
    assert phone.hangup_cause == 17
    assert phone.application == "Hangup" and phone.appdata == "17"
    assert 'Executing [5551234@default:2] Set("PJSIP/alice-' in caplog.text
    assert '", "X=1234")' in caplog.text


async def test_hangup_default_and_named_causes():
    phone, _ = await call("[default]\nexten => s,1,Hangup()\n")
    assert phone.ops == [("hangup", 16)]
    phone, _ = await call("[default]\nexten => s,1,Hangup(USER_BUSY)\n")
    assert phone.hangup_cause == 17


async def test_application_names_are_case_insensitive_and_registry_is_open():
    seen = []

    @application("TestPark")
    async def park(runner, channel, data):
        seen.append(data)

    try:
        phone, _ = await call("[default]\nexten => s,1,noop(x)\nsame => n,TESTPARK(${EXTEN})\n")
    finally:
        APPLICATIONS.pop("testpark")
    assert seen == ["s"]


async def test_unknown_application_hangs_up(caplog):
    phone, _ = await call("[default]\nexten => s,1,Answer\nsame => n,Frobnicate(1)\nsame => n,Set(NOT=reached)\n")
    assert "No application 'Frobnicate' for extension (default, s, 2)" in caplog.text
    assert "NOT" not in phone.variables
    assert phone.ops[-1] == ("hangup", 16)


# ---- jumps -----------------------------------------------------------------------------------------


async def test_goto_labels_same_n_and_gotoif():
    phone, _ = await call(
        "[default]\n"
        "exten => s,1,Set(I=0)\n"
        "same => n(top),Set(I=$[${I} + 1])\n"
        "same => n,GotoIf($[${I} < 3]?top)\n"
        "same => n,GotoIf($[${I} = 3]?:never)\n"
        "same => n,GotoIf(0?never:other,1)\n"
        "same => n(never),Set(NEVER=1)\n"
        "exten => other,1,Set(AT=${EXTEN})\n"
        "same => n,Goto(ctx2,100,lab)\n"
        "[ctx2]\n"
        "exten => 100,1,Set(SKIPPED=1)\n"
        "same => n(lab),Set(CTX=${CONTEXT}/${EXTEN}/${PRIORITY})\n"
        "same => n,Goto(+2)\n"
        "same => n,Set(SKIPPED2=1)\n"
        "same => n,Goto(s,1)\n"
        "exten => s,1,Hangup(21)\n"
    )
    v = phone.variables
    assert v["I"] == "3" and v["AT"] == "other" and v["CTX"] == "ctx2/100/2"
    assert "NEVER" not in v and "SKIPPED" not in v and "SKIPPED2" not in v
    assert phone.hangup_cause == 21


async def test_goto_to_a_missing_label_hangs_up(caplog):
    phone, _ = await call("[default]\nexten => s,1,Goto(nolabel)\nsame => n,Set(NOT=1)\n")
    assert "NOT" not in phone.variables and phone.hung_up
    assert "must be a number > 0, or valid label" in caplog.text


async def test_gosub_return_args_and_retval():
    phone, _ = await call(
        "[default]\n"
        "exten => s,1,Set(ARG1=outer)\n"
        "same => n,Gosub(sub,s,1(a,b))\n"
        "same => n,Set(R1=${GOSUB_RETVAL}|${ARG1}|${ARGC})\n"
        "same => n,Gosub(lab)\n"
        "same => n,Set(R2=${GOSUB_RETVAL})\n"
        "same => n,Hangup\n"
        "same => n(lab),Set(LOCAL(L)=x)\n"
        "same => n,Return(${L})\n"
        "[sub]\n"
        "exten => s,1,Set(IN=${ARG1}${ARG2}${ARGC})\n"
        "same => n,Gosub(inner,1(z))\n"
        "same => n,Set(AFTER=${ARG1}${ARG2}|${GOSUB_RETVAL})\n"
        "same => n,Return($[1+1])\n"
        "exten => inner,1,Set(INNER=${ARG1}-${ARG2}-${ARGC})\n"
        "same => n,Return(in)\n"
    )
    v = phone.variables
    assert v["IN"] == "ab2"
    assert v["INNER"] == "z--1"  # the caller's ARG2 is hidden in the inner frame
    assert v["AFTER"] == "ab|in"
    assert v["R1"] == "2|outer|"  # ARGC did not exist before the Gosub
    assert v["R2"] == "x" and "L" not in v


async def test_return_without_gosub_and_gosub_to_nowhere_hang_up(caplog):
    phone, _ = await call("[default]\nexten => s,1,Return\nsame => n,Set(NOT=1)\n")
    assert "NOT" not in phone.variables and "Return without Gosub" in caplog.text
    phone, _ = await call("[default]\nexten => s,1,Gosub(nowhere,s,1)\nsame => n,Set(NOT=1)\n")
    assert "NOT" not in phone.variables and "non-existent destination for Gosub" in caplog.text


async def test_per_priority_lookup_and_includes():
    phone, _ = await call(
        "[default]\n"
        "include => more\n"
        "exten => 100,1,Set(A=literal)\n"
        "exten => _1XX,1,Set(A=never)\n"
        "same => 2,Set(B=pattern-2)\n"
        "[more]\n"
        "exten => 100,1,Set(A=never)\n"
        "same => 3,Set(C=included-3)\n"
        "same => 4,Hangup(31)\n",
        exten="100",
    )
    v = phone.variables
    assert (v["A"], v["B"], v["C"]) == ("literal", "pattern-2", "included-3")
    assert phone.hangup_cause == 31


# ---- ends of the dialplan --------------------------------------------------------------------------


async def test_autofallthrough_hangs_up_normal_clearing():
    phone, _ = await call("[default]\nexten => s,1,Answer\nsame => n,NoOp\n")
    assert phone.ops == [("answer",), ("hangup", 16)]


async def test_autofallthrough_after_busy_dial_indicates_busy():
    phone, _ = await call("[default]\nexten => s,1,Dial(PJSIP/bob,5)\n", phone=Phone(dial_status="BUSY"))
    assert phone.ops[-1] == ("hangup", 17) and phone.state == 7  # Busy
    phone, _ = await call("[default]\nexten => s,1,Dial(PJSIP/bob)\n", phone=Phone(dial_status="CHANUNAVAIL"))
    assert phone.ops[-1] == ("hangup", 34)


async def test_autofallthrough_no_waits_for_an_extension():
    plan = "[general]\nautofallthrough=no\n[default]\nexten => s,1,Answer\n" + FAST
    # (falling off the end of 't' would wait again and go to 't' again, as Asterisk does: end it)
    plan += "exten => 12,1,Set(GOT=12)\nexten => t,1,Set(T=1)\nsame => n,Hangup\n"
    phone, _ = await call(plan)
    assert phone.variables.get("T") == "1"
    phone = Phone()
    phone.press("12", at=0.05)
    phone, _ = await call(plan, phone=phone)
    assert phone.variables.get("GOT") == "12"


async def test_start_at_missing_extension_goes_to_i_or_hangs_up_unallocated():
    phone, _ = await call("[default]\nexten => s,1,NoOp\n", exten="999")
    assert phone.ops == [("hangup", 1)]
    phone, _ = await call("[default]\nexten => i,1,Set(INV=${INVALID_EXTEN})\n", exten="999")
    assert phone.variables["INV"] == "999"


async def test_h_extension_runs_after_hangup_and_media_fails_fast():
    phone, runner = await call(
        "[default]\n"
        "exten => s,1,Answer\n"
        "same => n,Dial(PJSIP/bob,,g)\n"
        "same => n,Hangup(16)\n"
        "exten => h,1,Set(H=${EXTEN}|${DIALSTATUS}|${HANGUPCAUSE})\n"
        "same => n,Playback(bye)\n"
        "same => n,Set(NOT=reached)\n",
        phone=Phone(dial_status="ANSWER"),
    )
    assert phone.variables["H"] == "h|ANSWER|16"
    assert "NOT" not in phone.variables
    assert "bye" not in phone.named("play")


async def test_caller_hangup_during_wait_runs_h():
    phone = Phone()
    phone.hang_up_at(0.05)
    t0 = asyncio.get_running_loop().time()
    phone, _ = await call(
        "[default]\nexten => s,1,Answer\nsame => n,Wait(10)\nsame => n,Set(NOT=1)\nexten => h,1,Set(H=1)\n",
        phone=phone,
    )
    assert asyncio.get_running_loop().time() - t0 < 1
    assert phone.variables.get("H") == "1" and "NOT" not in phone.variables
    assert ("hangup", 16) not in phone.ops  # the far end hung up: no hangup sent


async def test_loop_is_cut_off(caplog):
    phone, _ = await call("[default]\nexten => s,1,Set(N=$[${N} + 1])\nsame => n,Goto(s,1)\n", loop_limit=100)
    assert phone.hung_up and "dialplan loop" in caplog.text
    # 100 steps ran (50 Sets); the first Set computed $[ + 1], a syntax error: "0"
    assert phone.variables["N"] == "49"


async def test_loop_counter_restarts_after_a_wait():
    phone, _ = await call(
        "[default]\nexten => s,1,Set(N=$[${N} + 1])\nsame => n,GotoIf($[${N} > 30]?done)\n"
        "same => n,Wait(0.001)\nsame => n,Goto(s,1)\nsame => n(done),Hangup(27)\n",
        loop_limit=10,
    )
    assert phone.hangup_cause == 27


async def test_absolute_timeout_goes_to_T():
    phone, _ = await call(
        "[default]\nexten => s,1,Answer\nsame => n,Set(TIMEOUT(absolute)=0.1)\nsame => n,Wait(5)\n"
        "exten => T,1,Set(TT=1)\n"
    )
    assert phone.variables.get("TT") == "1"


# ---- IVR -------------------------------------------------------------------------------------------

IVR = (
    "[default]\n"
    "exten => s,1,Answer\n" + FAST + "same => n,Background(welcome&menu)\n"
    "same => n,WaitExten()\n"
    "exten => 1,1,Set(GOT=1)\n"
    "exten => 2,1,Set(GOT=2)\n"
    "exten => 23,1,Set(GOT=23)\n"
    "exten => i,1,Set(GOT=i:${INVALID_EXTEN})\n"
    "exten => t,1,Set(GOT=t)\n"
)


async def test_ivr_digit_during_background():
    phone = Phone(play_seconds=0.2)
    phone.press("1", at=0.05)
    phone, _ = await call(IVR, phone=phone)
    assert phone.variables["GOT"] == "1"
    assert phone.named("play") == ["welcome"]  # interrupted


async def test_ivr_collects_more_digits_while_more_could_match():
    phone = Phone()
    phone.press("23", at=0.1)
    phone, _ = await call(IVR, phone=phone)
    assert phone.variables["GOT"] == "23"
    phone = Phone()
    phone.press("2", at=0.1)  # 23 could follow: wait TIMEOUT(digit), then 2
    t0 = asyncio.get_running_loop().time()
    phone, _ = await call(IVR, phone=phone)
    assert phone.variables["GOT"] == "2"
    assert asyncio.get_running_loop().time() - t0 >= 0.25


async def test_ivr_invalid_and_timeout():
    phone = Phone()
    phone.press("9", at=0.1)
    phone, _ = await call(IVR, phone=phone)
    assert phone.variables["GOT"] == "i:9"
    phone, _ = await call(IVR)
    assert phone.variables["GOT"] == "t"


async def test_waitexten_timeout_continues_when_next_priority_exists_and_moh_option():
    phone, _ = await call(
        "[default]\nexten => s,1,WaitExten(0.05,m(jazz))\nsame => n,Set(NEXT=1)\nsame => n,WaitExten(0.05)\n"
    )
    assert phone.variables["NEXT"] == "1"
    assert phone.ops[0][:2] == ("moh", "jazz")
    assert phone.ops[-1] == ("hangup", 16)  # no 't': the call ends


# ---- Read, Playback, SayDigits, Record, Echo, MusicOnHold ----------------------------------------


async def test_read_until_pound_and_status():
    phone = Phone()
    phone.press("42#", at=0.05)
    phone, _ = await call("[default]\nexten => s,1,Read(PIN,enter-pin,,,,1)\n", phone=phone)
    assert phone.variables["PIN"] == "42" and phone.variables["READSTATUS"] == "OK"
    assert phone.ops[0] == ("answer",) and phone.named("play") == ["enter-pin"]


async def test_read_maxdigits_timeout_attempts_and_skip():
    phone = Phone()
    phone.press("12345", at=0.05)
    phone, _ = await call("[default]\nexten => s,1,Read(V,,3,,,1)\n", phone=phone)
    assert phone.variables["V"] == "123" and phone.variables["READSTATUS"] == "OK"
    phone = Phone()
    phone.press("7", at=0.05)
    phone, _ = await call("[default]\nexten => s,1,Read(V,,,,,0.2)\n", phone=phone)
    assert phone.variables["V"] == "7" and phone.variables["READSTATUS"] == "TIMEOUT"
    phone = Phone()
    phone.press("5#", at=0.25)  # first attempt times out, the second gets 5
    phone, _ = await call("[default]\nexten => s,1,Read(V,prompt,,,2,0.15)\n", phone=phone)
    assert phone.variables["V"] == "5" and phone.named("play") == ["prompt", "prompt"]
    phone, _ = await call("[default]\nexten => s,1,Read(V,,,s)\n")
    assert phone.variables["READSTATUS"] == "SKIPPED" and ("answer",) not in phone.ops


async def test_read_hangup_status():
    phone = Phone()
    phone.hang_up_at(0.05)
    phone, _ = await call("[default]\nexten => s,1,Read(V,,,,,1)\nexten => h,1,Set(S=${READSTATUS})\n", phone=phone)
    assert phone.variables["S"] == "HANGUP"


async def test_playback_options_and_status():
    phone, _ = await call("[default]\nexten => s,1,Playback(hello&world)\n")
    assert phone.ops[:3] == [("answer",), ("play", "hello"), ("play", "world")]
    assert phone.variables["PLAYBACKSTATUS"] == "SUCCESS"
    phone, _ = await call("[default]\nexten => s,1,Playback(hello,noanswer)\n")
    assert phone.ops[0] == ("play", "hello")
    phone, _ = await call("[default]\nexten => s,1,Playback(hello,skip)\n")
    assert phone.named("play") == [] and phone.variables["PLAYBACKSTATUS"] == "SUCCESS"
    phone, _ = await call("[default]\nexten => s,1,Playback(nofile&world)\n", phone=Phone(missing={"nofile"}))
    assert phone.named("play") == ["world"] and phone.variables["PLAYBACKSTATUS"] == "FAILED"


async def test_saydigits_echo_moh_record():
    phone = Phone()
    phone.press("#", at=0.1)  # ends Echo
    phone.press("#", at=0.2)  # ends Record
    phone, _ = await call(
        "[default]\nexten => s,1,Answer\nsame => n,SayDigits(12*#)\nsame => n,Echo()\n"
        "same => n,MusicOnHold(jazz,0.02)\nsame => n,Record(/tmp/msg.wav,3,10,q)\n",
        phone=phone,
    )
    assert phone.named("play") == ["digits/1", "digits/2", "digits/star", "digits/pound"]
    assert ("echo",) in phone.ops and ("moh", "jazz", 0.02) in phone.ops
    assert ("record", "/tmp/msg.wav", 3, 10, "#") in phone.ops
    assert phone.variables["RECORD_STATUS"] == "DTMF" and phone.variables["RECORDED_FILE"] == "/tmp/msg"


async def test_record_beep_timeout_and_missing_format():
    phone, _ = await call("[default]\nexten => s,1,Record(msg.ulaw,0,1,t)\n")
    assert phone.named("play") == ["beep"]
    assert phone.ops[-2][4] == "*" and phone.variables["RECORD_STATUS"] == "TIMEOUT"
    phone, _ = await call("[default]\nexten => s,1,Record(msg)\nsame => n,Set(NOT=1)\n")
    assert phone.variables["RECORD_STATUS"] == "ERROR" and "NOT" not in phone.variables


# ---- Dial ------------------------------------------------------------------------------------------


async def test_dial_arguments_and_continuation_on_failure():
    phone, _ = await call(
        "[default]\nexten => s,1,Dial(PJSIP/bob&PJSIP/555@trunk,20,tTm(jazz))\n"
        "same => n,Set(AFTER=${DIALSTATUS})\nsame => n,Hangup(19)\n",
        phone=Phone(dial_status="NOANSWER"),
    )
    assert ("dial", ["PJSIP/bob", "PJSIP/555@trunk"], 20.0, "tTm(jazz)") in phone.ops
    assert phone.variables["AFTER"] == "NOANSWER" and phone.hangup_cause == 19


async def test_dial_answered_ends_unless_g():
    phone, _ = await call(
        "[default]\nexten => s,1,Dial(PJSIP/bob)\nsame => n,Set(NOT=1)\n", phone=Phone(dial_status="ANSWER")
    )
    assert "NOT" not in phone.variables and phone.ops[-1] == ("hangup", 16)
    assert phone.ops[0][2] is None  # no timeout
    phone, _ = await call(
        "[default]\nexten => s,1,Dial(PJSIP/bob,,g)\nsame => n,Set(AFTER=1)\n", phone=Phone(dial_status="ANSWER")
    )
    assert phone.variables["AFTER"] == "1"
    phone = Phone(dial_status="ANSWER")
    phone.hangup_in_bridge = True  # the caller hangs up in the bridge: g does not continue
    phone, _ = await call(
        "[default]\nexten => s,1,Dial(PJSIP/bob,,g)\nsame => n,Set(AFTER=1)\nexten => h,1,Set(H=1)\n", phone=phone
    )
    assert "AFTER" not in phone.variables and phone.variables["H"] == "1"


async def test_busy_congestion_apps():
    phone, _ = await call("[default]\nexten => s,1,Busy(5)\nsame => n,Set(NOT=1)\n")
    assert phone.ops == [("hangup", 17)] and "NOT" not in phone.variables
    phone, _ = await call("[default]\nexten => s,1,Congestion()\n")
    assert phone.ops == [("hangup", 34)]
    phone, _ = await call("[default]\nexten => s,1,Answer\nsame => n,Busy(0.05)\n")
    assert phone.ops == [("answer",), ("hangup", 16)]  # answered: busy in audio, then the call ends


async def test_progress_ringing_and_answer_delay():
    phone, _ = await call("[default]\nexten => s,1,Progress\nsame => n,Ringing\nsame => n,Answer(20)\n")
    assert phone.ops == [("progress",), ("ringing",), ("answer",), ("hangup", 16)]


async def test_globals_shared_through_globals_argument():
    shared = {"G": "1"}
    await call("[default]\nexten => s,1,Set(GLOBAL(G)=$[${G} + 1])\n", globals_=shared)
    phone, _ = await call("[default]\nexten => s,1,Set(SEEN=${G})\n", globals_=shared)
    assert phone.variables["SEEN"] == "2"


@pytest.mark.parametrize("cid", ['"Bob" <200>', "Bob <200>", "<200>"])
async def test_callerid_all_is_settable(cid):
    phone, _ = await call(f"[default]\nexten => s,1,Set(CALLERID(all)={cid})\n")
    assert phone.caller_num == "200"
    assert phone.caller_name == ("" if cid == "<200>" else "Bob")
