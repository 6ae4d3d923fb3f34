"""The scoring API's request and response bodies, per resource, and the v1 <-> v2 migration.

Two versions of the transaction request live side by side:

v1 (``POST /v1/score``)
    ``tx_datetime`` is a naive ISO datetime read as the bank's local time (``Europe/Brussels``), and
    ``tx_amount`` a float in euros, as the simulator writes them.
v2 (``POST /v2/score``)
    ``tx_datetime`` must carry its UTC offset (a naive time is refused: "local" is ambiguous between
    the card network, the terminal and the bank, and an hour of DST moves the night flag), and the
    amount is an integer number of minor units (cents) with its ``currency``, so no float ever
    carries money over the wire. Only ``EUR`` is supported: the model was trained on euros.

The model sees neither: both are turned into one :class:`Transaction` (naive bank-local time, amount
in euros), the form the features are defined on. :func:`transaction_from_v2` is that migration and
:func:`v2_from_v1` the reverse, for clients that move to v2.

Every request model forbids unknown fields (a typo such as ``tx_ammount`` is a 422, not a silently
ignored value) and is strict where a coercion would hide a client bug: ids and minor units must be
JSON integers (``"12"`` and ``12.5`` are refused), ``is_fraud`` a JSON boolean.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
    Strict,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    create_model,
    field_validator,
)

__all__ = [
    "BANK_TIMEZONE",
    "MAX_ID",
    "AdminReloadPublic",
    "BatchScorePublic",
    "ErrorPublic",
    "FeedbackBatch",
    "FeedbackBatchPublic",
    "FeedbackCreate",
    "FeedbackPublic",
    "HealthPublic",
    "NotReadyPublic",
    "ReadyPublic",
    "ScorePublic",
    "Transaction",
    "TransactionV1Batch",
    "TransactionV1Create",
    "TransactionV2Batch",
    "TransactionV2Create",
    "ValidationErrorPublic",
    "batch_models",
    "feedback_batch_model",
    "transaction_from_v1",
    "transaction_from_v2",
    "v2_from_v1",
]

#: The bank's local time zone: v1's naive times are read in it, v2's aware times converted to it.
BANK_TIMEZONE = ZoneInfo("Europe/Brussels")
#: Ids are stored as SQL BIGINT: anything larger could not be logged.
MAX_ID = 2**63 - 1
#: Largest accepted amount (euros): far above any card limit, small enough that float cents are exact.
MAX_AMOUNT = 1_000_000_000.0
_EARLIEST = dt.datetime(1970, 1, 2)
_LATEST = dt.datetime(9999, 12, 30)

Id = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]


def _iso_text(value: object) -> object:
    """Times travel as ISO 8601 text: a number would be read as Unix seconds, silently (pydantic's lax mode)."""
    if isinstance(value, str | dt.datetime):
        return value
    raise ValueError(f"must be an ISO 8601 string such as 2018-05-12T14:03:27, got {type(value).__name__}")


def _euros_only(value: object) -> object:
    if isinstance(value, str) and value != "EUR":
        raise ValueError(
            f"currency {value[:8]!r} is not supported: only EUR (the model was trained on euros); "
            "convert the amount to euro cents before sending"
        )
    return value


# FastAPI validates the parsed JSON in Python mode, where Strict() would refuse every string.
IsoText = BeforeValidator(_iso_text)
_RANGE = "between 1970-01-02 and 9999-12-30, and at most MLSYS_LAB_MAX_AHEAD_SECONDS (a day) ahead of the service"
#: What v1 accepts, said in the schema: JSON Schema's ``date-time`` format requires an offset, which
#: v1 refuses, so a schema-driven client would never send a valid v1 time.
NAIVE_DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"
_NAIVE_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": NAIVE_DATETIME_PATTERN,
        "description": f"ISO 8601 without offset, read as the bank's local time (Europe/Brussels); {_RANGE}.",
        "examples": ["2018-05-12T14:03:27"],
    }
)
Schema = Literal["v1", "v2"]
_STRICT_BODY = ConfigDict(extra="forbid", frozen=True)


class _TransactionIds(BaseModel):
    model_config = _STRICT_BODY

    transaction_id: Id = Field(description="The bank's id of this transaction; each is scored once.")
    customer_id: Id = Field(description="The card's customer.")
    terminal_id: Id = Field(description="The payment terminal.")


class TransactionV1Create(_TransactionIds):
    """One raw transaction, v1: naive bank-local time and a float amount in euros."""

    tx_datetime: Annotated[NaiveDatetime, IsoText, _NAIVE_SCHEMA]
    tx_amount: Annotated[float, Strict()] = Field(
        ge=0, le=MAX_AMOUNT, allow_inf_nan=False, description="Amount in euros."
    )

    @field_validator("tx_datetime")
    @classmethod
    def _in_range(cls, value: dt.datetime) -> dt.datetime:
        return _check_range(value)


class TransactionV2Create(_TransactionIds):
    """One raw transaction, v2: timezone-aware time, integer minor units and a currency."""

    tx_datetime: Annotated[AwareDatetime, IsoText] = Field(
        description=f"ISO 8601 with a UTC offset (Z or +hh:mm); a naive time is refused; {_RANGE}.",
        examples=["2018-05-12T12:03:27Z"],
    )
    amount_minor: Annotated[StrictInt, Field(ge=0, le=int(MAX_AMOUNT * 100))] = Field(
        description="Amount in the currency's minor unit: cents for EUR.", examples=[1999]
    )
    currency: Annotated[Literal["EUR"], BeforeValidator(_euros_only)] = Field(
        description="ISO 4217 code; only EUR is supported (the model knows euros)."
    )

    @field_validator("tx_datetime")
    @classmethod
    def _in_range(cls, value: dt.datetime) -> dt.datetime:
        try:  # near year 1 or 9999 the conversion itself overflows: that is a range error too
            _check_range(value.astimezone(dt.UTC).replace(tzinfo=None))
        except OverflowError:
            raise ValueError(f"must be between {_EARLIEST.date()} and {_LATEST.date()}") from None
        return value


def _check_range(value: dt.datetime) -> dt.datetime:
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST.date()} and {_LATEST.date()}")
    return value


class TransactionV1Batch(BaseModel):
    """Up to the service's batch limit of v1 transactions, scored in order."""

    model_config = _STRICT_BODY
    transactions: list[TransactionV1Create] = Field(min_length=1)


class TransactionV2Batch(BaseModel):
    """Up to the service's batch limit of v2 transactions, scored in order."""

    model_config = _STRICT_BODY
    transactions: list[TransactionV2Create] = Field(min_length=1)


def batch_models(limit: int) -> tuple[type[TransactionV1Batch], type[TransactionV2Batch]]:
    """The two batch bodies with ``limit`` as ``maxItems``: in the schema, and checked before any row is.

    pydantic checks a list's length before validating its items, so a 50 MB batch is refused
    without validating a million rows.
    """
    v1 = create_model(
        "TransactionV1Batch",
        __base__=TransactionV1Batch,
        transactions=(list[TransactionV1Create], Field(min_length=1, max_length=limit)),
    )
    v2 = create_model(
        "TransactionV2Batch",
        __base__=TransactionV2Batch,
        transactions=(list[TransactionV2Create], Field(min_length=1, max_length=limit)),
    )
    return v1, v2


class Transaction(BaseModel):
    """The canonical transaction every version migrates to: naive bank-local time, euros."""

    model_config = ConfigDict(frozen=True)

    transaction_id: int
    customer_id: int
    terminal_id: int
    tx_datetime: dt.datetime
    tx_amount: float
    schema_version: Schema


def transaction_from_v1(request: TransactionV1Create) -> Transaction:
    """v1 is already canonical: copy it."""
    return Transaction(**request.model_dump(), schema_version="v1")


def transaction_from_v2(request: TransactionV2Create, timezone: dt.tzinfo = BANK_TIMEZONE) -> Transaction:
    """The canonical transaction of a v2 request: time converted to the bank's zone, cents to euros.

    Examples
    --------
    >>> body = {"transaction_id": 1, "customer_id": 2, "terminal_id": 3, "amount_minor": 1999,
    ...         "currency": "EUR", "tx_datetime": "2018-07-01T22:30:00Z"}
    >>> tx = transaction_from_v2(TransactionV2Create.model_validate(body))
    >>> tx.tx_datetime.isoformat(), tx.tx_amount
    ('2018-07-02T00:30:00', 19.99)
    """
    local = request.tx_datetime.astimezone(timezone).replace(tzinfo=None)
    return Transaction(
        transaction_id=request.transaction_id,
        customer_id=request.customer_id,
        terminal_id=request.terminal_id,
        tx_datetime=local,
        tx_amount=request.amount_minor / 100,
        schema_version="v2",
    )


def v2_from_v1(request: TransactionV1Create, timezone: dt.tzinfo = BANK_TIMEZONE) -> TransactionV2Create:
    """The v2 body a v1 client should send: local time given its offset, euros rounded to cents.

    Of two equal wall-clock times at the end of summer time, the first (``fold=0``) is taken: v1
    cannot say which was meant, which is one reason v2 exists.

    Examples
    --------
    >>> v1 = TransactionV1Create(transaction_id=1, customer_id=2, terminal_id=3,
    ...                          tx_datetime=dt.datetime(2018, 7, 2, 0, 30), tx_amount=19.99)
    >>> v2 = v2_from_v1(v1)
    >>> v2.tx_datetime.isoformat(), v2.amount_minor, v2.currency
    ('2018-07-02T00:30:00+02:00', 1999, 'EUR')
    """
    cents = Decimal(repr(request.tx_amount)) * 100
    return TransactionV2Create(
        transaction_id=request.transaction_id,
        customer_id=request.customer_id,
        terminal_id=request.terminal_id,
        tx_datetime=request.tx_datetime.replace(tzinfo=timezone),
        amount_minor=int(cents.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)),
        currency="EUR",
    )


# -- responses --------------------------------------------------------------------------------------


class ScorePublic(BaseModel):
    """The decision on one transaction."""

    request_id: uuid.UUID = Field(description="Unique per decision; the decision log's key.")
    transaction_id: int
    score: float = Field(ge=0, le=1, description="The model's fraud probability.")
    decision: bool = Field(description="True: flagged as fraud (score >= threshold).")
    threshold: float
    model_version: int
    schema_version: Schema


class BatchScorePublic(BaseModel):
    """Decisions in request order."""

    results: list[ScorePublic]
    model_version: int


class FeedbackCreate(BaseModel):
    """A transaction's label and when the bank learned it (a chargeback, a customer's call)."""

    model_config = _STRICT_BODY

    transaction_id: Id
    is_fraud: StrictBool
    label_time: Annotated[dt.datetime, IsoText] = Field(
        description=f"When the label became known; a naive time is bank-local, an aware one is converted; {_RANGE}."
    )

    @field_validator("label_time")
    @classmethod
    def _to_bank_time(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            try:
                value = value.astimezone(BANK_TIMEZONE).replace(tzinfo=None)
            except OverflowError:
                raise ValueError(f"must be between {_EARLIEST.date()} and {_LATEST.date()}") from None
        return _check_range(value)


class FeedbackBatch(BaseModel):
    """Up to the service's batch limit of labels, recorded in order in one transaction (all or none)."""

    model_config = _STRICT_BODY
    labels: list[FeedbackCreate] = Field(min_length=1)


def feedback_batch_model(limit: int) -> type[FeedbackBatch]:
    """The feedback batch body with ``limit`` as ``maxItems`` (checked before any label is), as :func:`batch_models`."""
    return create_model(
        "FeedbackBatch", __base__=FeedbackBatch, labels=(list[FeedbackCreate], Field(min_length=1, max_length=limit))
    )


class FeedbackPublic(BaseModel):
    """The label as recorded."""

    transaction_id: int
    is_fraud: bool
    label_time: AwareDatetime = Field(
        description="When the label became known, in the bank's time zone, with its offset."
    )
    applied_to_features: bool = Field(
        description="False when the transaction is older than every feature window: stored, but no feature uses it."
    )


class FeedbackBatchPublic(BaseModel):
    """The labels of a batch as recorded, in the order sent."""

    results: list[FeedbackPublic]


class NotReadyPublic(BaseModel):
    status: Literal["not ready"] = "not ready"
    detail: str


class ErrorPublic(BaseModel):
    """Every error answer: ``detail`` says what went wrong and what to do."""

    detail: str


class ValidationErrorPublic(BaseModel):
    """A 422: ``detail`` lists each problem with its location, ``summary`` names the fields in one line."""

    detail: list[dict[str, object]]
    summary: str


class HealthPublic(BaseModel):
    status: Literal["alive"] = "alive"


class ReadyPublic(BaseModel):
    status: Literal["ready"] = "ready"
    model_version: int
    model_alias: str
    model_sha256: str
    transactions_in_state: int
    worker_pid: int = Field(description="The process that answered: with several workers, which one.")
    reload_refused: str | None = Field(
        default=None, description="Why the newest reload was refused while this version kept serving; null if none."
    )


class AdminReloadPublic(BaseModel):
    previous_version: int | None
    model_version: int
    model_sha256: str
