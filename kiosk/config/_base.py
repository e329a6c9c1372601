"""Shared base for config models: strict, documented, bounded."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Every config model forbids unknown keys, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
