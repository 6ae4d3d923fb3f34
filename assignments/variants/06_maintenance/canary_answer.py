# ruff: noqa
# %% correct: md5 of the salted id, as a number in [0, 1)
import hashlib


def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    bucket = int(hashlib.md5(f"{salt}|{card_id}".encode()).hexdigest(), 16) / 16**32
    return "challenger" if bucket < share else "champion"


# %% correct: zlib.crc32 buckets of 10,000
import zlib


def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    bucket = zlib.crc32(f"{salt}-{card_id}".encode()) % 10_000
    return "challenger" if bucket < share * 10_000 else "champion"


# %% wrong: a random draw per request
import random


def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    return "challenger" if random.random() < share else "champion"


# %% wrong: the card id modulo 100, no hash and no salt
def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    return "challenger" if card_id % 100 < share * 100 else "champion"


# %% wrong: the share is hashed with the card, so a card switches models when the share grows
import hashlib


def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    digest = hashlib.sha256(f"{salt}:{card_id}:{share}".encode()).digest()
    return "challenger" if int.from_bytes(digest[:8], "big") / 2.0**64 < share else "champion"


# %% wrong: Python's built-in hash of a string, salted per process
def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    return "challenger" if hash(f"{salt}:{card_id}") % 10_000 < share * 10_000 else "champion"


# %% wrong: the salt is ignored
import hashlib


def canary_model(card_id: int, share: float, salt: str = "canary") -> str:
    digest = hashlib.sha256(str(card_id).encode()).digest()
    return "challenger" if int.from_bytes(digest[:8], "big") / 2.0**64 < share else "champion"
