# ruff: noqa
# %% correct: fitted on NumPy arrays (predicting on a DataFrame then warns about feature names)
def train_forest(train, features, random_state: int):
    genuine = train[train.tx_fraud == 0].sample(frac=0.2, random_state=random_state)
    balanced = pd.concat([genuine, train[train.tx_fraud == 1]])
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=random_state)
    return model.fit(balanced[features].to_numpy(), balanced.tx_fraud.to_numpy())


# %% correct: every core (n_jobs=-1) and a NumPy generator for the sample
def train_forest(train, features, random_state: int):
    rng = np.random.default_rng(random_state)
    genuine = np.flatnonzero(train.tx_fraud.to_numpy() == 0)
    keep = rng.choice(genuine, size=round(0.2 * len(genuine)), replace=False)
    rows = np.sort(np.concatenate([keep, np.flatnonzero(train.tx_fraud.to_numpy() == 1)]))
    model = RandomForestClassifier(n_estimators=30, max_depth=8, n_jobs=-1, random_state=random_state)
    return model.fit(train.iloc[rows][features], train.iloc[rows].tx_fraud)


# %% wrong: no max_depth
def train_forest(train, features, random_state: int):
    genuine = train[train.tx_fraud == 0].sample(frac=0.2, random_state=random_state)
    balanced = pd.concat([genuine, train[train.tx_fraud == 1]])
    return RandomForestClassifier(n_estimators=30, random_state=random_state).fit(balanced[features], balanced.tx_fraud)


# %% wrong: no undersampling
def train_forest(train, features, random_state: int):
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=random_state)
    return model.fit(train[features], train.tx_fraud)


# %% wrong: a fifth of all rows, frauds included
def train_forest(train, features, random_state: int):
    sample = train.sample(frac=0.2, random_state=random_state)
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=random_state)
    return model.fit(sample[features], sample.tx_fraud)


# %% wrong: ignores the features argument (uses the notebook's X_columns)
def train_forest(train, features, random_state: int):
    genuine = train[train.tx_fraud == 0].sample(frac=0.2, random_state=random_state)
    balanced = pd.concat([genuine, train[train.tx_fraud == 1]])
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=random_state)
    return model.fit(balanced[X_columns], balanced.tx_fraud)


# %% wrong: ignores the train argument (uses the notebook's probe_train)
def train_forest(train, features, random_state: int):
    genuine = probe_train[probe_train.tx_fraud == 0].sample(frac=0.2, random_state=random_state)
    balanced = pd.concat([genuine, probe_train[probe_train.tx_fraud == 1]])
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=random_state)
    return model.fit(balanced[features], balanced.tx_fraud)


# %% wrong: seeds the global generator instead of passing random_state
def train_forest(train, features, random_state: int):
    np.random.seed(random_state)
    genuine = train[train.tx_fraud == 0].sample(frac=0.2)
    balanced = pd.concat([genuine, train[train.tx_fraud == 1]])
    model = RandomForestClassifier(n_estimators=30, max_depth=8, random_state=np.random.randint(1_000_000))
    return model.fit(balanced[features], balanced.tx_fraud)


# %% wrong: a fixed seed inside
def train_forest(train, features, random_state: int):
    genuine = train[train.tx_fraud == 0].sample(frac=0.2, random_state=0)
    balanced = pd.concat([genuine, train[train.tx_fraud == 1]])
    return RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0).fit(
        balanced[features], balanced.tx_fraud
    )
