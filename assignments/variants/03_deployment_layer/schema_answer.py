# ruff: noqa
# %% correct: Annotated constraints and a finite float
from typing import Annotated


class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction_id: Annotated[StrictInt, Field(ge=0)]
    customer_id: Annotated[StrictInt, Field(ge=0)]
    terminal_id: Annotated[StrictInt, Field(ge=0)]
    tx_datetime: dt.datetime
    tx_amount: Annotated[float, Field(ge=0, allow_inf_nan=False)]


# %% correct: pydantic's NonNegativeInt in strict mode per field and a field validator for finiteness
import math

from pydantic import NonNegativeInt, field_validator


class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction_id: NonNegativeInt = Field(strict=True)
    customer_id: NonNegativeInt = Field(strict=True)
    terminal_id: NonNegativeInt = Field(strict=True)
    tx_datetime: dt.datetime
    tx_amount: float = Field(ge=0)

    @field_validator("tx_amount")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("tx_amount must be finite")
        return value


# %% wrong: tx_datetime as a plain string
class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    transaction_id: StrictInt = Field(ge=0)
    customer_id: StrictInt = Field(ge=0)
    terminal_id: StrictInt = Field(ge=0)
    tx_datetime: str
    tx_amount: float = Field(ge=0)


# %% wrong: only customer_id is non-negative and strict
class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    transaction_id: int
    customer_id: StrictInt = Field(ge=0)
    terminal_id: StrictInt
    tx_datetime: dt.datetime
    tx_amount: float = Field(ge=0)


# %% wrong: lax ints accept "3" and 7.0
class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    transaction_id: int = Field(ge=0)
    customer_id: int = Field(ge=0)
    terminal_id: int = Field(ge=0)
    tx_datetime: dt.datetime
    tx_amount: float = Field(ge=0)


# %% wrong: unknown fields ignored (pydantic's default)
class TransactionRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    transaction_id: StrictInt = Field(ge=0)
    customer_id: StrictInt = Field(ge=0)
    terminal_id: StrictInt = Field(ge=0)
    tx_datetime: dt.datetime
    tx_amount: float = Field(ge=0)


# %% wrong: strictly positive amounts (gt=0 rejects a zero amount)
class TransactionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    transaction_id: StrictInt = Field(ge=0)
    customer_id: StrictInt = Field(ge=0)
    terminal_id: StrictInt = Field(ge=0)
    tx_datetime: dt.datetime
    tx_amount: float = Field(gt=0)


# %% wrong: forwards to the package's schema
class TransactionRequest(schemas.TransactionV1Create):
    """One card transaction to score (v1)."""
