# ruff: noqa
# %% correct: plain dictionaries, day by day
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    days = {}
    for d, c, y, s in zip(list(day), list(card), list(y_true), list(y_proba)):
        best, label = days.setdefault(d, {}).get(c, (-np.inf, 0))
        days[d][c] = (max(best, s), max(label, y))
    blocked, precisions = set(), []
    for d in sorted(days):
        ranked = sorted((c for c in days[d] if c not in blocked), key=lambda c: (-days[d][c][0], c))[:k]
        hits = [c for c in ranked if days[d][c][1] == 1]
        precisions.append(len(hits) / k)
        blocked.update(hits)
    return float(sum(precisions) / len(precisions))


# %% correct: NumPy lexsort per day
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame(
        {
            "day": np.asarray(day),
            "card": np.asarray(card),
            "y": np.asarray(y_true),
            "s": np.asarray(y_proba, dtype=float),
        }
    )
    per_card = tx.groupby(["day", "card"], as_index=False).agg(s=("s", "max"), y=("y", "max"))
    detected, values = set(), []
    for d in np.sort(per_card["day"].unique()):
        rows = per_card[(per_card["day"] == d) & ~per_card["card"].isin(detected)]
        order = np.lexsort((rows["card"].to_numpy(), -rows["s"].to_numpy()))[:k]
        top = rows.iloc[order]
        caught = top.loc[top["y"] == 1, "card"].tolist()
        values.append(len(caught) / k)
        detected |= set(caught)
    return float(np.mean(values))


# %% wrong: ranks transactions, not cards
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame({"day": day, "card": card, "label": y_true, "score": y_proba})
    per_day = [rows.sort_values("score", ascending=False).head(k)["label"].sum() / k for _, rows in tx.groupby("day")]
    return float(np.mean(per_day))


# %% wrong: every checked card is removed, genuine ones too
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame({"day": day, "card": card, "label": y_true, "score": y_proba})
    checked, per_day = set(), []
    for _, rows in tx.groupby("day", sort=True):
        cards = rows.groupby("card").agg(score=("score", "max"), label=("label", "max")).reset_index()
        cards = cards[~cards["card"].isin(checked)]
        top = cards.sort_values(["score", "card"], ascending=[False, True]).head(k)
        per_day.append(top["label"].sum() / k)
        checked.update(top["card"])
    return float(np.mean(per_day))


# %% wrong: ties in score go to the larger card id
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame({"day": day, "card": card, "label": y_true, "score": y_proba})
    detected, per_day = set(), []
    for _, rows in tx.groupby("day", sort=True):
        cards = rows.groupby("card").agg(score=("score", "max"), label=("label", "max")).reset_index()
        cards = cards[~cards["card"].isin(detected)]
        top = cards.sort_values(["score", "card"], ascending=[False, False]).head(k)
        hits = top.loc[top["label"] == 1, "card"]
        per_day.append(len(hits) / k)
        detected.update(hits)
    return float(np.mean(per_day))


# %% wrong: divides by the number of cards checked, not k
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame({"day": day, "card": card, "label": y_true, "score": y_proba})
    detected, per_day = set(), []
    for _, rows in tx.groupby("day", sort=True):
        cards = rows.groupby("card").agg(score=("score", "max"), label=("label", "max")).reset_index()
        cards = cards[~cards["card"].isin(detected)]
        top = cards.sort_values(["score", "card"], ascending=[False, True]).head(k)
        hits = top.loc[top["label"] == 1, "card"]
        per_day.append(len(hits) / len(top))
        detected.update(hits)
    return float(np.mean(per_day))


# %% wrong: never removes detected cards
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame({"day": day, "card": card, "label": y_true, "score": y_proba})
    per_day = []
    for _, rows in tx.groupby("day", sort=True):
        cards = rows.groupby("card").agg(score=("score", "max"), label=("label", "max")).reset_index()
        top = cards.sort_values(["score", "card"], ascending=[False, True]).head(k)
        per_day.append((top["label"] == 1).sum() / k)
    return float(np.mean(per_day))


# %% wrong: forwards to the package
def card_precision_at_k_by_hand(day, card, y_true, y_proba, k: int) -> float:
    tx = pd.DataFrame(
        {"tx_time_days": np.asarray(day), "customer_id": np.asarray(card), "tx_fraud": np.asarray(y_true)}
    )
    return evaluate.card_precision_at_k(tx, np.asarray(y_proba), k=k).mean
