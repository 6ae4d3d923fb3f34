# ruff: noqa
# %% correct: one MON3 test, named by convention instead of tagged
def test_MON3_amounts_agree_across_schemas(system):
    base = {"transaction_id": 7, "customer_id": 3, "terminal_id": 4}
    v1 = system["parse_v1"]({**base, "tx_datetime": "2018-05-02T09:00:00", "tx_amount": 250.0})
    v2 = system["parse_v2"](
        {**base, "tx_datetime": "2018-05-02T09:00:00+02:00", "amount_minor": 25_000, "currency": "EUR"}
    )
    assert abs(v1.tx_amount - v2.tx_amount) < 1e-9


MY_TESTS = [test_MON3_amounts_agree_across_schemas]


# %% correct: reproducibility and staleness
@ml_test("I1")
def same_seed_same_scores(system):
    assert np.array_equal(system["train"](5), system["train"](5))


@ml_test("MON4")
def model_is_fresh(system):
    assert (system["now"]() - system["trained_at"]).days <= system["max_model_age_days"]


MY_TESTS = [same_seed_same_scores, model_is_fresh]


# %% wrong: a test that cannot fail
@ml_test("MON3")
def v2_parses(system):
    body = {
        "transaction_id": 1,
        "customer_id": 1,
        "terminal_id": 1,
        "tx_datetime": "2018-05-01T10:00:00+02:00",
        "amount_minor": 1999,
        "currency": "EUR",
    }
    assert system["parse_v2"](body) is not None


MY_TESTS = [v2_parses]


# %% wrong: the test is right but not tagged
def amounts_agree(system):
    v1 = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    v2 = {**v1, "tx_datetime": "2018-05-01T10:00:00+02:00", "amount_minor": 1999, "currency": "EUR"}
    assert system["parse_v1"]({**v1, "tx_amount": 19.99}).tx_amount == system["parse_v2"](v2).tx_amount


MY_TESTS = [amounts_agree]


# %% wrong: a test that fails on the clean system (cents compared with euros)
@ml_test("MON3")
def amounts_in_cents(system):
    v1 = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    v2 = {**v1, "tx_datetime": "2018-05-01T10:00:00+02:00", "amount_minor": 1999, "currency": "EUR"}
    assert system["parse_v2"](v2).tx_amount == 1999


MY_TESTS = [amounts_in_cents]


# %% wrong: tagged with an item its check does not test
@ml_test("MON5")
def v1_amount_kept(system):
    v1 = {
        "transaction_id": 1,
        "customer_id": 1,
        "terminal_id": 1,
        "tx_datetime": "2018-05-01T10:00:00",
        "tx_amount": 19.99,
    }
    assert system["parse_v1"](v1).tx_amount == 19.99


MY_TESTS = [v1_amount_kept]
