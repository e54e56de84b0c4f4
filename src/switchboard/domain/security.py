"""Secrets: argon2 password hashes, opaque tokens stored hashed, secrets encrypted at rest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.fernet import Fernet, InvalidToken

MASK = "********"  # what every view shows instead of a stored secret; sent back, it keeps the secret

_hasher = PasswordHasher()
# A valid hash of a random password: verifying against it costs what a real check costs, so an
# unknown username takes as long to refuse as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """argon2 is deliberately slow (~tens of ms): keep it off the event loop."""
    return await asyncio.to_thread(verify_password, password_hash, password)


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


def new_token(form: str = "opaque") -> str:
    """A fresh bearer secret: 256 random bits url-safe, or a random UUID where a dialect shows one."""
    return str(uuid.uuid4()) if form == "uuid" else secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens and agent keys are stored as SHA-256: they are random, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


class SecretBox:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) for secrets kept at rest, and
    a derived key for HMACs of credentials (never the encryption key itself)."""

    def __init__(self, key: str):
        self._fernet = Fernet(key.encode() if isinstance(key, str) else key)
        self.mac_key = hashlib.sha256(b"switchboard-mac\0" + base64.urlsafe_b64decode(key)).digest()

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    @classmethod
    def from_settings(cls, secret_key: str | None, data_dir: Path) -> SecretBox:
        """The configured key, or the one in DATA_DIR/secret.key (created 0600 on first start)."""
        if secret_key:
            return cls(secret_key)
        path = Path(data_dir) / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = cls.generate_key()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(key + "\n")
            tmp.chmod(0o600)
            tmp.replace(path)
        return cls(path.read_text().strip())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as e:
            raise ValueError("secret cannot be decrypted with this key") from e

    def mac(self, *parts: str) -> bytes:
        msg = b"\0".join(p.encode("utf-8", "surrogatepass") for p in parts)
        return hmac.new(self.mac_key, msg, hashlib.sha256).digest()
