"""What every schema model shares: the base class and the id shape (engine.schema)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A slug: lowercase ASCII letters, digits and dashes.  Prefect keys (input keys,
# artifact keys) accept only this shape, so every id that may end up in one is a slug.
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN, min_length=1, max_length=80)]


class Model(BaseModel):
    """Base for every schema model: unknown keys are errors, instances are frozen.

    ``defer_build``: a model's validator is built when the model first validates, not
    when it is defined. `kehoach validate` validates through engine.schema.AnyDocument
    only, so it builds that one validator instead of one per model."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Target(Model):
    """Who an assignment, deliverable or task is for: one unit or one group."""

    unit: Slug | None = None
    group: Slug | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if (self.unit is None) == (self.group is None):
            raise ValueError("ghi đúng một trong hai: 'unit' hoặc 'group'")
        return self
