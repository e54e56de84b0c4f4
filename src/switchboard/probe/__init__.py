"""VoIP probing: SIP OPTIONS round trips (`measure`), the E-model (`emodel`) and a test responder (`responder`)."""

from switchboard.probe.emodel import CODECS, mos, mos_from_r, r_factor
from switchboard.probe.measure import TestResult, measure_rtts, run_test, split_target, summarize
from switchboard.probe.responder import Responder

__all__ = [
    "CODECS",
    "Responder",
    "TestResult",
    "measure_rtts",
    "mos",
    "mos_from_r",
    "r_factor",
    "run_test",
    "split_target",
    "summarize",
]
