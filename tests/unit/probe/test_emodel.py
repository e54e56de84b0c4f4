"""The G.107 E-model (switchboard.probe.emodel) against G.107's published values."""

import pytest

from switchboard.probe.emodel import CODECS, codec_factors, mos, mos_from_r, r_factor


@pytest.mark.parametrize(
    ("r", "expected"),
    [(93.2, 4.41), (90, 4.34), (80, 4.02), (70, 3.60), (60, 3.10), (50, 2.58), (0, 1.0), (100, 4.5)],
)
def test_r_to_mos_published_points(r, expected):
    # G.107 Annex B (Figure B.1 / the R -> MOS table of G.109): 90 -> 4.34, 80 -> 4.03, 70 -> 3.6, ...
    assert mos_from_r(r) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("r", [-50, -0.001, -1e9])
def test_mos_floor(r):
    assert mos_from_r(r) == 1.0


@pytest.mark.parametrize("r", [100.001, 120, 1e9])
def test_mos_ceiling(r):
    assert mos_from_r(r) == 4.5


def test_mos_from_r_is_monotonic():
    values = [mos_from_r(r / 10) for r in range(-100, 1101)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))


def test_default_conditions():
    assert r_factor(one_way_delay_ms=0, loss_pct=0) == pytest.approx(93.2, abs=1e-9)
    assert r_factor(one_way_delay_ms=0, loss_pct=0, codec="G.711") == pytest.approx(93.2, abs=1e-9)
    assert mos(rtt_ms=0, jitter_ms=0, loss_pct=0, codec="G.711") == pytest.approx(4.41, abs=0.005)


def test_codec_table_and_aliases():
    assert CODECS["G.711"] == (0.0, 4.3)
    assert CODECS["G.729"] == (11.0, 19.0)
    for name in ("g711", "PCMU", "pcma", "G.711"):
        assert codec_factors(name) == (0.0, 4.3)
    for name in ("G729", "g.729", "G729A"):
        assert codec_factors(name) == (11.0, 19.0)
    # G.729 without loss: R = 93.2 - Ie
    assert r_factor(one_way_delay_ms=0, loss_pct=0, codec="G.729") == pytest.approx(82.2)


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown codec"):
        r_factor(one_way_delay_ms=0, loss_pct=0, codec="opus")
    with pytest.raises(ValueError):
        mos(rtt_ms=10, jitter_ms=0, loss_pct=0, codec="GSM")


def test_ie_eff_formula():
    # Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl)
    for codec, (ie, bpl) in CODECS.items():
        for ppl in (0.5, 1, 3, 10, 50, 100):
            expected = 93.2 - (ie + (95 - ie) * ppl / (ppl + bpl))
            assert r_factor(one_way_delay_ms=0, loss_pct=ppl, codec=codec) == pytest.approx(expected)
    bursty = r_factor(one_way_delay_ms=0, loss_pct=5, burst_r=2.0)
    assert bursty < r_factor(one_way_delay_ms=0, loss_pct=5)


def test_idd_above_100ms():
    # G.107 §7.3: Idd = 25((1+X^6)^(1/6) - 3(1+(X/3)^6)^(1/6) + 2), X = log2(Ta/100); Ta = 200 -> X = 1
    idd_200 = 25 * ((2) ** (1 / 6) - 3 * (1 + (1 / 3) ** 6) ** (1 / 6) + 2)
    r150 = r_factor(one_way_delay_ms=150, loss_pct=0)
    r200 = r_factor(one_way_delay_ms=200, loss_pct=0)
    assert idd_200 == pytest.approx(3.04, abs=0.01)
    assert 2 < 93.2 - r200 - idd_200 < 5  # the echo terms Idte + Idle at the default TELR / WEPL
    assert r150 > r200
    # the classic E-model curve: R around 74 at 300 ms and 64 at 400 ms one way
    assert r_factor(one_way_delay_ms=300, loss_pct=0) == pytest.approx(74, abs=1.5)
    assert r_factor(one_way_delay_ms=400, loss_pct=0) == pytest.approx(64, abs=1.5)


def test_echo_terms_are_small_below_100ms():
    for ta in (1, 10, 50, 100):
        assert 0 < 93.2 - r_factor(one_way_delay_ms=ta, loss_pct=0) < 2.5


@pytest.mark.parametrize("codec", ["G.711", "G.729"])
def test_mos_falls_as_conditions_worsen(codec):
    def at(rtt=20.0, jitter=2.0, loss=0.5):
        return mos(rtt_ms=rtt, jitter_ms=jitter, loss_pct=loss, codec=codec)

    by_rtt = [at(rtt=v) for v in (0, 20, 50, 100, 200, 300, 500, 800)]
    by_jitter = [at(jitter=v) for v in (0, 5, 10, 20, 50, 100, 200)]
    by_loss = [at(loss=v) for v in (0, 0.5, 1, 2, 5, 10, 20, 50)]
    for series in (by_rtt, by_jitter, by_loss):
        assert all(b < a for a, b in zip(series, series[1:], strict=False)), series
    assert at(rtt=0, jitter=0, loss=100) < 1.1
    assert at(rtt=1000, jitter=0, loss=100) == 1.0


def test_g729_against_g711():
    # without loss; with loss G.711 without PLC (Bpl 4.3) falls faster than G.729 (Bpl 19)
    assert mos(rtt_ms=40, jitter_ms=3, loss_pct=0, codec="G.729") < mos(
        rtt_ms=40, jitter_ms=3, loss_pct=0, codec="G.711"
    )
    assert mos(rtt_ms=40, jitter_ms=3, loss_pct=2, codec="G.729") > mos(
        rtt_ms=40, jitter_ms=3, loss_pct=2, codec="G.711"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"one_way_delay_ms": -1, "loss_pct": 0},
        {"one_way_delay_ms": 0, "loss_pct": 101},
        {"one_way_delay_ms": 0, "loss_pct": -1},
    ],
)
def test_bad_inputs(kwargs):
    with pytest.raises(ValueError):
        r_factor(**kwargs)
