"""The ITU-T G.107 E-model, reduced to what a probe measures: delay, jitter and packet loss.

Sources: ITU-T G.107 (06/2015) "The E-model: a computational model for use in transmission planning", §7
(the transmission rating factor R and its terms) and Annex B (R -> MOS); ITU-T G.113 Appendix I for the
codec impairment factors Ie and packet-loss robustness factors Bpl (values as issue 5 fixes them).

    R = Ro - Is - Id - Ie,eff + A

* Ro - Is: every G.107 parameter other than delay and codec at its default value (Table 3). G.107 gives
  R = 93.2 for the default connection, which includes the listener-echo term Idle at zero delay
  (about 0.15), so the model is anchored there: R = 93.2 - (Id(Ta) - Id(0)) - Ie,eff.
* Id = Idte + Idle + Idd (§7.3), with the one-way delay Ta as the mean one-way delay T and the round
  trip Tr = 2·Ta; talker echo loudness TELR = 65 dB, weighted echo path loss WEPL = 110 dB, STMR = 15 dB
  (defaults). At these values Idte and Idle are small (about 1 R point at Ta = 50 ms) but they make R
  fall continuously with delay, which Idd alone does not do below 100 ms. Idte is floored at 0: at a
  few milliseconds the G.107 expression dips slightly below 0 (-0.2), which would make R rise with delay.
  Idd is 0 for Ta <= 100 ms, else 25·((1 + X^6)^(1/6) - 3·(1 + (X/3)^6)^(1/6) + 2) with X = log10(Ta/100) / log10(2).
* Ie,eff = Ie + (95 - Ie) · Ppl / (Ppl / BurstR + Bpl) (§7.4), Ppl the loss in percent, BurstR = 1 for
  random loss.
* A = 0 (advantage factor for conventional wire-bound connections).
* MOS (Annex B): 1 for R < 0, 4.5 for R > 100, else 1 + 0.035·R + R·(R - 60)·(100 - R)·7·10^-6, floored
  at 1 (the cubic dips to 0.99 for 0 < R < 13; the floor keeps MOS on its 1..4.5 scale and monotonic in R).

For a probe (`mos`), the one-way delay is Ta = RTT/2 + 2·jitter: half the measured round trip, plus a
de-jitter buffer sized at twice the RFC 3550 interarrival jitter (a common adaptive-buffer target that
absorbs most of the delay variation); codec frame and look-ahead delays are left out, they are the
same for every path and the issue asks about the network.
"""

from __future__ import annotations

import math

#: codec -> (Ie, Bpl)
CODECS: dict[str, tuple[float, float]] = {
    "G.711": (0.0, 4.3),
    "G.729": (11.0, 19.0),
}
_ALIASES = {
    "G711": "G.711",
    "G711U": "G.711",
    "G711A": "G.711",
    "PCMU": "G.711",
    "PCMA": "G.711",
    "G729": "G.729",
    "G729A": "G.729",
}

R_DEFAULT = 93.2  # G.107 default connection (Table 3 values, zero delay, G.711 without loss)
_RO = 94.77  # 15 - 1.5·(SLR + No) with SLR = 8 dB, No = -61.18 dBm0p (defaults)
_TELR = 65.0
_WEPL = 110.0


def codec_factors(codec: str) -> tuple[float, float]:
    """(Ie, Bpl) of a codec name ("G.711", "PCMU", "G729", ... any case); ValueError if unknown."""
    key = codec.strip().upper()
    key = _ALIASES.get(key.replace(".", "").replace("-", "").replace(" ", ""), key)
    try:
        return CODECS[key]
    except KeyError:
        raise ValueError(f"unknown codec {codec!r} (known: {', '.join(CODECS)})") from None


def _idd(ta: float) -> float:
    if ta <= 100.0:
        return 0.0
    x = math.log10(ta / 100.0) / math.log10(2.0)
    return 25.0 * ((1.0 + x**6) ** (1 / 6) - 3.0 * (1.0 + (x / 3.0) ** 6) ** (1 / 6) + 2.0)


def _idte(t: float) -> float:
    roe = -1.5 * (-61.18 + 2.0)  # -1.5·(No + RLR), RLR = 2 dB
    terv = _TELR - 40.0 * math.log10((1.0 + t / 10.0) / (1.0 + t / 150.0)) + 6.0 * math.exp(-0.3 * t * t)
    re = 80.0 + 2.5 * (terv - 14.0)
    d = roe - re
    return max(0.0, (d / 2.0 + math.sqrt(d * d / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-t)))


def _idle(tr: float) -> float:
    rle = 10.5 * (_WEPL + 7.0) * (tr + 1.0) ** -0.25
    d = _RO - rle
    return d / 2.0 + math.sqrt(d * d / 4.0 + 169.0)


def _id(ta: float) -> float:
    return _idte(ta) + _idle(2.0 * ta) + _idd(ta)


_ID0 = _id(0.0)


def r_factor(*, one_way_delay_ms: float, loss_pct: float, codec: str = "G.711", burst_r: float = 1.0) -> float:
    """The rating factor R for a mouth-to-ear one-way delay (ms) and a packet loss (percent, 0..100)."""
    if one_way_delay_ms < 0 or not math.isfinite(one_way_delay_ms):
        raise ValueError(f"one-way delay must be a finite number >= 0, not {one_way_delay_ms!r}")
    if not 0.0 <= loss_pct <= 100.0:
        raise ValueError(f"loss must be a percentage in 0..100, not {loss_pct!r}")
    if burst_r <= 0:
        raise ValueError(f"BurstR must be > 0, not {burst_r!r}")
    ie, bpl = codec_factors(codec)
    ie_eff = ie + (95.0 - ie) * loss_pct / (loss_pct / burst_r + bpl)
    return R_DEFAULT - (_id(one_way_delay_ms) - _ID0) - ie_eff


def mos_from_r(r: float) -> float:
    """Estimated MOS (conversational quality, 1..4.5) for a rating factor R (G.107 Annex B)."""
    if r < 0:
        return 1.0
    if r > 100:
        return 4.5
    return max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6)


def mos(*, rtt_ms: float, jitter_ms: float, loss_pct: float, codec: str) -> float:
    """MOS for a measured path: one-way delay RTT/2 plus a de-jitter buffer of 2 x jitter (module docstring)."""
    if rtt_ms < 0 or jitter_ms < 0:
        raise ValueError("rtt and jitter must be >= 0")
    return mos_from_r(r_factor(one_way_delay_ms=rtt_ms / 2.0 + 2.0 * jitter_ms, loss_pct=loss_pct, codec=codec))
