"""Access tokens kept across restarts, encrypted at rest.

KIS allows one token issue per minute per app key and notifies the account holder on every
issue, and a token lives 24 h. A restart that issued a new token would both spam the trader and
wait 61 s on EGW00133, so each issued token is kept with its expiry and reused.

The file holds only ciphertext: AES-256-GCM under a key derived (HKDF-SHA256) from the app key
*and secret*, which live in the OS keyring or the environment, never on disk. A stolen cache
file is useless without the secret; a changed secret simply makes the old file unreadable (it is
ignored and replaced). The file name is a hash of the endpoint and app key, not the key itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import AppCredential

log = logging.getLogger(__name__)

#: A cached token with less life than this left is not worth reusing (a new one is issued).
MIN_REMAINING_S = 600.0


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float          # epoch seconds


class TokenCache(Protocol):
    def load(self, endpoint: str, credential: AppCredential) -> CachedToken | None: ...

    def save(self, endpoint: str, credential: AppCredential, token: CachedToken) -> None: ...

    def clear(self, endpoint: str, credential: AppCredential) -> None: ...


class EncryptedTokenCache:
    """One small encrypted file per (REST endpoint, app key) in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @staticmethod
    def _key_id(endpoint: str, credential: AppCredential) -> str:
        digest = hashlib.sha256(f"{endpoint}\n{credential.app_key.reveal()}".encode())
        return digest.hexdigest()[:24]

    @staticmethod
    def _cipher(credential: AppCredential, key_id: str) -> AESGCM:
        material = f"{credential.app_key.reveal()}\n{credential.app_secret.reveal()}".encode()
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=key_id.encode(),
                   info=b"kis-desk access-token cache v1").derive(material)
        return AESGCM(key)

    def _path(self, key_id: str) -> Path:
        return self.directory / f"token-{key_id}.bin"

    def load(self, endpoint: str, credential: AppCredential) -> CachedToken | None:
        key_id = self._key_id(endpoint, credential)
        try:
            blob = self._path(key_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s: token cache unreadable (%s); a new token will be issued",
                        credential.label, type(exc).__name__)
            return None
        try:
            plain = self._cipher(credential, key_id).decrypt(blob[:12], blob[12:], key_id.encode())
            data = json.loads(plain)
            cached = CachedToken(str(data["token"]), float(data["expires_at"]))
        except (InvalidTag, ValueError, KeyError, TypeError):
            log.info("%s: token cache does not match this app key/secret; ignored", credential.label)
            return None
        if cached.expires_at - time.time() < MIN_REMAINING_S:
            return None
        return cached

    def save(self, endpoint: str, credential: AppCredential, token: CachedToken) -> None:
        key_id = self._key_id(endpoint, credential)
        nonce = os.urandom(12)
        plain = json.dumps({"token": token.token, "expires_at": token.expires_at}).encode()
        blob = nonce + self._cipher(credential, key_id).encrypt(nonce, plain, key_id.encode())
        path = self._path(key_id)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            # created owner-only where the OS supports modes; ciphertext either way
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: could not keep the access token for the next start (%s)",
                        credential.label, type(exc).__name__)

    def clear(self, endpoint: str, credential: AppCredential) -> None:
        try:
            self._path(self._key_id(endpoint, credential)).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("%s: could not remove the cached token (%s)", credential.label,
                        type(exc).__name__)
