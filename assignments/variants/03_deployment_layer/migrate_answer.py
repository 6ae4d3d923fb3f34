# ruff: noqa
# %% correct: Decimal for the cents and zoneinfo for Brussels
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo


def migrate_v1_to_v2(body: dict) -> dict:
    when = dt.datetime.fromisoformat(str(body["tx_datetime"])).replace(tzinfo=ZoneInfo("Europe/Brussels"))
    cents = int((Decimal(str(body["tx_amount"])) * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return {
        "transaction_id": body["transaction_id"],
        "customer_id": body["customer_id"],
        "terminal_id": body["terminal_id"],
        "tx_datetime": when.isoformat(),
        "amount_minor": cents,
        "currency": "EUR",
    }


# %% correct: pandas Timestamp.tz_localize and round
def migrate_v1_to_v2(body: dict) -> dict:
    out = {k: body[k] for k in ("transaction_id", "customer_id", "terminal_id")}
    out["tx_datetime"] = pd.Timestamp(body["tx_datetime"]).tz_localize(schemas.BANK_TIMEZONE).isoformat()
    out["amount_minor"] = int(round(float(body["tx_amount"]) * 100))
    out["currency"] = "EUR"
    return out


# %% wrong: truncates cents with int()
def migrate_v1_to_v2(body: dict) -> dict:
    local = dt.datetime.fromisoformat(str(body["tx_datetime"])).replace(tzinfo=schemas.BANK_TIMEZONE)
    return {
        **{k: body[k] for k in ("transaction_id", "customer_id", "terminal_id")},
        "tx_datetime": local.isoformat(),
        "amount_minor": int(body["tx_amount"] * 100),
        "currency": "EUR",
    }


# %% wrong: a fixed +02:00 offset
def migrate_v1_to_v2(body: dict) -> dict:
    local = dt.datetime.fromisoformat(str(body["tx_datetime"])).replace(tzinfo=dt.timezone(dt.timedelta(hours=2)))
    return {
        **{k: body[k] for k in ("transaction_id", "customer_id", "terminal_id")},
        "tx_datetime": local.isoformat(),
        "amount_minor": int(round(body["tx_amount"] * 100)),
        "currency": "EUR",
    }


# %% wrong: converts to UTC instead of stating the bank's local offset
def migrate_v1_to_v2(body: dict) -> dict:
    local = dt.datetime.fromisoformat(str(body["tx_datetime"])).replace(tzinfo=schemas.BANK_TIMEZONE)
    return {
        **{k: body[k] for k in ("transaction_id", "customer_id", "terminal_id")},
        "tx_datetime": local.astimezone(dt.timezone.utc).isoformat(),
        "amount_minor": int(round(body["tx_amount"] * 100)),
        "currency": "EUR",
    }


# %% wrong: amount_minor as a float
def migrate_v1_to_v2(body: dict) -> dict:
    local = dt.datetime.fromisoformat(str(body["tx_datetime"])).replace(tzinfo=schemas.BANK_TIMEZONE)
    return {
        **{k: body[k] for k in ("transaction_id", "customer_id", "terminal_id")},
        "tx_datetime": local.isoformat(),
        "amount_minor": round(body["tx_amount"] * 100, 0),
        "currency": "EUR",
    }


# %% wrong: forwards to the package
def migrate_v1_to_v2(body: dict) -> dict:
    return schemas.v2_from_v1(schemas.TransactionV1Create.model_validate(body)).model_dump(mode="json")
