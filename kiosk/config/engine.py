"""The checkpoint loop's order and timeouts."""

from typing import Literal

from pydantic import Field

from ._base import Section


class EngineSection(Section):
    order: Literal["code_first", "temperature_first"] = Field(
        "code_first", description="Which check the kiosk asks for first."
    )
    code_timeout_s: float = Field(
        10.0, gt=0, le=120, description="After a temperature, how long to wait for a code."
    )
    result_hold_s: float = Field(
        4.0, gt=0, le=60, description="How long a result stays on the kiosk screen."
    )
    device_deadline_ms: int = Field(
        500, ge=10, le=10000, description="A blocking device call longer than this is a fault."
    )
