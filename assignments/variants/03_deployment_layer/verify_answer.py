# ruff: noqa
# %% correct: open once, hashlib.file_digest-style chunks, constant-time compare
import hmac


def load_verified(path, expected_sha256: str):
    with open(path, "rb") as handle:
        payload = handle.read()
    actual = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual, expected_sha256):
        raise ValueError(f"refusing {path}: expected sha256 {expected_sha256}, file has {actual}")
    return joblib.load(io.BytesIO(payload))


# %% correct: pickle.loads on the bytes read once
def load_verified(path, expected_sha256: str):
    payload = Path(path).read_bytes()
    digest = hashlib.new("sha256", payload).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"digest mismatch: registered {expected_sha256}, actual {digest}")
    return pickle.loads(payload)


# %% wrong: unpickles before checking
def load_verified(path, expected_sha256: str):
    payload = Path(path).read_bytes()
    model = joblib.load(io.BytesIO(payload))
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256:
        raise ValueError(f"expected {expected_sha256}, got {actual}")
    return model


# %% wrong: hashes one read, loads the path again
def load_verified(path, expected_sha256: str):
    actual = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if actual != expected_sha256:
        raise ValueError(f"expected {expected_sha256}, got {actual}")
    return joblib.load(path)


# %% wrong: the message names only the expected digest
def load_verified(path, expected_sha256: str):
    payload = Path(path).read_bytes()
    if hashlib.sha256(payload).hexdigest() != expected_sha256:
        raise ValueError(f"{path} does not match the registered sha256 {expected_sha256}")
    return joblib.load(io.BytesIO(payload))


# %% wrong: raises the registry's IntegrityError, not ValueError
def load_verified(path, expected_sha256: str):
    payload = Path(path).read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256:
        raise IntegrityError(f"expected {expected_sha256}, got {actual}")
    return joblib.load(io.BytesIO(payload))


# %% wrong: hashes the file name, not its bytes
def load_verified(path, expected_sha256: str):
    actual = hashlib.sha256(str(path).encode()).hexdigest()
    if actual != expected_sha256:
        raise ValueError(f"expected {expected_sha256}, got {actual}")
    return joblib.load(path)
