"""Streaming envelope encryption: file-like objects over binary files, for messages of any size
in bounded memory (docs/envelope.md, "Streaming and the release rule").

    with open("big.bin", "rb") as src, open("big.bin.enc", "wb") as dst:
        with keyplane.stream.open_encrypting(dst, keyrings=[ring]) as writer:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                writer.write(chunk)

    with open("big.bin.enc", "rb") as src:
        with keyplane.stream.open_decrypting(src, keyrings=[ring]) as reader:
            while chunk := reader.read(1 << 20):
                ...

Frames are sealed and opened with the GIL released; the GIL is taken back only to call the
file's `write` or `read`. An `EnvelopeWriter` finishes the message (final frame, signature) at
`close()` or at the end of a `with` block that raised nothing; one left unfinished leaves a message
every reader refuses as truncated. An `EnvelopeReader` returns only authenticated frames, and holds
a signed message's plaintext until its signature verified unless `signed_release="per_frame"`;
for the unsigned suites a message truncated or tampered further on fails the read that reaches
that point, so read to the end before acting on the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from ._keyplane import EnvelopeReader, EnvelopeWriter
from .envelope import EngineLike, Keyring, _keyrings

__all__ = ["EnvelopeReader", "EnvelopeWriter", "open_decrypting", "open_encrypting"]


def open_encrypting(
    dest: IO[bytes] | Any,
    *,
    engine: EngineLike | None = None,
    key_id: str | None = None,
    key_ids: Sequence[str] = (),
    keyrings: Sequence[Keyring] = (),
    encryption_context: Mapping[str, str] | None = None,
    frame_length: int = 4096,
    algorithm: str | None = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
) -> EnvelopeWriter:
    """A writer that encrypts what is written to it into a message written to `dest` (any object
    with a `write(bytes)` method); the header is written at once."""
    rings = _keyrings(engine, key_id, key_ids, keyrings, False)
    return EnvelopeWriter(
        dest,
        keyrings=rings,
        encryption_context=encryption_context,
        frame_length=frame_length,
        algorithm=algorithm,
        commitment_policy=commitment_policy,
        max_encrypted_data_keys=max_encrypted_data_keys,
    )


def open_decrypting(
    src: IO[bytes] | Any,
    *,
    engine: EngineLike | None = None,
    key_id: str | None = None,
    key_ids: Sequence[str] = (),
    keyrings: Sequence[Keyring] = (),
    discovery: bool = False,
    encryption_context: Mapping[str, str] | None = None,
    commitment_policy: str | None = None,
    max_encrypted_data_keys: int | None = None,
    max_buffered_plaintext: int | None = None,
    signed_release: str = "after_signature",
) -> EnvelopeReader:
    """A reader of the plaintext of the message in `src` (any object with a `read(n)` method
    returning bytes); the header is read and checked at once. `encryption_context`: pairs the
    message's context must have. `signed_release`: "after_signature" or "per_frame"."""
    rings = _keyrings(engine, key_id, key_ids, keyrings, discovery)
    return EnvelopeReader(
        src,
        keyrings=rings,
        encryption_context=encryption_context,
        commitment_policy=commitment_policy,
        max_encrypted_data_keys=max_encrypted_data_keys,
        max_buffered_plaintext=max_buffered_plaintext,
        signed_release=signed_release,
    )
