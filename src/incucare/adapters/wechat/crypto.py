"""WeChat safe mode (安全模式) and compatibility mode: AES-encrypted pushes and replies.

In plaintext mode the signature covers only token, timestamp and nonce, not the body, so whoever captures
one signed URL may post any body with it until the timestamp goes stale. Safe mode closes that: the
message travels encrypted, and ``msg_signature`` also covers the ciphertext.

The scheme, as WeChat documents it: the AES key is the 43-character EncodingAESKey plus ``=`` decoded
from base64 (32 bytes, AES-256), CBC mode with the key's first 16 bytes as IV, PKCS#7 padding to a 32-byte
block. The plaintext is 16 random bytes, the message length as 4 bytes big-endian, the message (UTF-8
XML), then the AppID, which must be ours. The signature is the SHA-1 of the sorted token, timestamp,
nonce and ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from incucare.adapters.wechat.protocol import cdata

BLOCK = 32
"""WeChat pads to 32 bytes (not AES's 16), so PKCS#7 pad values run from 1 to 32."""


class CryptoError(ValueError):
    """An encrypted message that does not decrypt, unpad or carry our AppID."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind the 43-character EncodingAESKey from the Official Account console."""
    if len(encoding_aes_key) != 43:
        raise CryptoError("EncodingAESKey has 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise CryptoError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise CryptoError("EncodingAESKey must decode to 32 bytes")
    return key


def msg_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """SHA-1 over the sorted token, timestamp, nonce and ciphertext (WeChat's ``msg_signature``)."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypted))).encode("utf-8")).hexdigest()


class MessageCrypto:
    """Encrypts and decrypts one Official Account's messages; built from its token, key and AppID."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.app_id = app_id

    def check(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        """True when ``signature`` is WeChat's ``msg_signature`` for this ciphertext (constant time)."""
        expected = msg_signature(self.token, timestamp, nonce, encrypted)
        return hmac.compare_digest(expected.encode("ascii"), signature.strip().lower().encode("utf-8"))

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def decrypt(self, encrypted: str) -> bytes:
        """The message XML inside ``encrypted``; raises ``CryptoError`` unless it is well-formed and ours."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error as exc:
            raise CryptoError("Encrypt is not base64") from exc
        if not data or len(data) % 16:
            raise CryptoError("ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding (wrong EncodingAESKey?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("decrypted message too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, app_id = plain[20:20 + length], plain[20 + length:]
        if len(message) != length:
            raise CryptoError("declared message length exceeds the data")
        if not hmac.compare_digest(app_id, self.app_id.encode("utf-8")):
            raise CryptoError("the message is for another AppID")
        return message

    def encrypt(self, xml: str, *, random16: bytes | None = None) -> str:
        """``xml`` encrypted for WeChat (base64); ``random16`` is for tests, normally fresh random bytes."""
        body = xml.encode("utf-8")
        plain = (random16 or os.urandom(16)) + struct.pack(">I", len(body)) + body + self.app_id.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def wrap_reply(self, xml: str, timestamp: str, nonce: str, *, random16: bytes | None = None) -> str:
        """A passive reply in safe mode: the encrypted reply XML with its signature, timestamp and nonce."""
        encrypted = self.encrypt(xml, random16=random16)
        signature = msg_signature(self.token, timestamp, nonce, encrypted)
        return (f"<xml><Encrypt>{cdata(encrypted)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>")
