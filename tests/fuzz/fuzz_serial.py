"""Fuzz a serial scanner's byte stream (drivers/serial_scanner.py, drivers/codes.py) and the
GM65 setup replies (drivers/gm65.py).

The stream is cut into the chunks the port would deliver and goes the way ``_serve`` sends
it: trigger acknowledgements stripped (``strip_ack``), lines framed and checked
(``SerialLinePipeline``). Nothing may raise; every code handed on must pass the hygiene
check on its own; a partial line never grows past its bound. A GM65 answering fuzz bytes to
``kiosk scanner setup`` must end in ``Gm65Error`` or a result, never another error or a hang.
"""

from __future__ import annotations

import atheris
from _fuzz import instrumented, run

with instrumented():
    from drivers.codes import SerialLinePipeline, check_payload
    from drivers.gm65 import Gm65, Gm65Error
    from drivers.serial_scanner import GM65_TRIGGER_ACK, strip_ack
    from kiosk.config.readers import DecoderConfig

_CFG = DecoderConfig(max_payload_chars=16)


def _stream(fdp: atheris.FuzzedDataProvider) -> None:
    pipeline = SerialLinePipeline(_CFG)
    trigger = fdp.ConsumeBool()
    held = b""
    mono_ns = 0
    while fdp.remaining_bytes():
        chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
        if fdp.ConsumeBool():
            chunk += GM65_TRIGGER_ACK[: fdp.ConsumeIntInRange(0, len(GM65_TRIGGER_ACK))]
        mono_ns += fdp.ConsumeIntInRange(0, 2_000_000_000)
        if trigger:
            chunk, held = strip_ack(held + chunk)
            if GM65_TRIGGER_ACK in chunk:
                raise AssertionError(f"an acknowledgement left in {chunk!r}")
        if not chunk:
            pipeline.expire(mono_ns, 500_000_000)
            continue
        codes, _rejected = pipeline.feed(chunk, mono_ns)
        for code in codes:
            text, reason = check_payload(code.text.encode(), _CFG.max_payload_chars)
            if text != code.text or "\r" in code.text or "\n" in code.text:
                raise AssertionError(f"code {code.text!r} handed on ({reason})")
        if pipeline.assembler.partial > _CFG.max_payload_chars * 4:
            raise AssertionError(f"partial line of {pipeline.assembler.partial} bytes")


class _Port:
    def __init__(self, fdp: atheris.FuzzedDataProvider) -> None:
        self.fdp = fdp
        self.t = 0.0

    def reset_input_buffer(self) -> None:
        pass

    def write(self, frame: bytes) -> None:
        pass

    def read(self, n: int) -> bytes:
        self.t += 0.05
        return self.fdp.ConsumeBytes(self.fdp.ConsumeIntInRange(0, n))

    def now(self) -> float:
        return self.t


def _gm65(fdp: atheris.FuzzedDataProvider) -> None:
    port = _Port(fdp)
    module = Gm65(port, timeout_s=1.0, now=port.now)
    try:
        module.setup("serial", "continuous", save=fdp.ConsumeBool())
    except Gm65Error:
        pass


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeIntInRange(0, 3):
        _stream(fdp)
    else:
        _gm65(fdp)


if __name__ == "__main__":
    run(one_input)
