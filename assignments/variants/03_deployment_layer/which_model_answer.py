# ruff: noqa
# %% correct: pandas read_sql, sorted in Python
def model_for_transaction(db_path, transaction_id: int):
    with sqlite3.connect(db_path) as connection:
        rows = pd.read_sql_query(
            "SELECT id, decided_at, model_version FROM decisions WHERE transaction_id = ?",
            connection,
            params=(int(transaction_id),),
        )
    if rows.empty:
        return None
    return int(rows.sort_values(["decided_at", "id"]).iloc[-1]["model_version"])


# %% correct: fetchall and max over (decided_at, id)
def model_for_transaction(db_path, transaction_id: int):
    connection = sqlite3.connect(db_path)
    try:
        rows = connection.execute(
            "SELECT decided_at, id, model_version FROM decisions WHERE transaction_id = ?", (int(transaction_id),)
        ).fetchall()
    finally:
        connection.close()
    return int(max(rows)[2]) if rows else None


# %% wrong: the highest model version, not the latest decision
def model_for_transaction(db_path, transaction_id: int):
    with sqlite3.connect(db_path) as connection:
        row = connection.execute(
            "SELECT MAX(model_version) FROM decisions WHERE transaction_id = ?", (int(transaction_id),)
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


# %% wrong: the first decision, not the latest
def model_for_transaction(db_path, transaction_id: int):
    with sqlite3.connect(db_path) as connection:
        row = connection.execute(
            "SELECT model_version FROM decisions WHERE transaction_id = ? ORDER BY decided_at ASC LIMIT 1",
            (int(transaction_id),),
        ).fetchone()
    return None if row is None else int(row[0])


# %% wrong: LIMIT 1 without ORDER BY
def model_for_transaction(db_path, transaction_id: int):
    with sqlite3.connect(db_path) as connection:
        row = connection.execute(
            "SELECT model_version FROM decisions WHERE transaction_id = ? LIMIT 1", (int(transaction_id),)
        ).fetchone()
    return None if row is None else int(row[0])


# %% wrong: crashes on a transaction never scored
def model_for_transaction(db_path, transaction_id: int):
    with sqlite3.connect(db_path) as connection:
        row = connection.execute(
            "SELECT model_version FROM decisions WHERE transaction_id = ? ORDER BY decided_at DESC, id DESC LIMIT 1",
            (int(transaction_id),),
        ).fetchone()
    return int(row[0])
