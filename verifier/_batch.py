"""Recover many signers at once, across processes: the audit's hot loop.

Each job is (message hash, 65-byte signature, v offset). Workers return the
20-byte signer address, or a short reason when the signature is unusable, with
exactly the rules of ``recover_report_signer`` (low-s only, v in range).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from ._canonical import keccak
from ._errors import SignatureError
from ._signing import HALF_N, SECP256K1_N, _split

_CCPublicKey: Any
_ffi: Any
_secp: Any
_CONTEXT: Any
try:
    import coincurve._libsecp256k1 as _binding
    from coincurve import PublicKey as _CCPublicKey
    from coincurve.context import GLOBAL_CONTEXT as _CONTEXT

    _ffi, _secp = _binding.ffi, _binding.lib
except ImportError:  # pragma: no cover - exercised only without coincurve
    _CCPublicKey = None

Job = tuple[bytes, bytes, int]
Result = bytes | str
PARALLEL_THRESHOLD = 4_000
CHUNK = 2_000


def process_pool(workers: int) -> Executor:
    """The process pool every parallel part of the audit uses."""
    return ProcessPoolExecutor(max_workers=workers)


def recover_one(message: bytes, signature: bytes, v_offset: int) -> Result:
    """The 20-byte signer of ``message``, or why the signature is unusable."""
    try:
        r, s, v = _split(signature, v_offset)
    except SignatureError as exc:
        return str(exc)
    if _CCPublicKey is None:  # pragma: no cover
        from ._signing import _recover

        try:
            return bytes.fromhex(_recover(message, r, s, v)[2:])
        except SignatureError as exc:
            return str(exc)
    return _recover_secp(message, signature, v)


_ZERO = bytes(32)
_N = SECP256K1_N.to_bytes(32, "big")
_HALF = HALF_N.to_bytes(32, "big")


def recover(message: bytes, signature: bytes, v_offset: int) -> Result:
    """``recover_one``, checking a well-formed signature without ``_split``'s ints.

    Big-endian words of equal length compare as their numbers: 0 < r < n and
    0 < s <= n/2 as bytes. Anything else goes through ``_split`` for its reason.
    """
    if _CCPublicKey is not None and len(signature) == 65:
        recid = signature[64] - v_offset
        if recid in (0, 1) and _ZERO < signature[:32] < _N:
            s = signature[32:64]
            if _ZERO < s <= _HALF:
                return _recover_secp(message, signature, recid)
    return recover_one(message, signature, v_offset)


def _recover_secp(message: bytes, signature: bytes, recid: int) -> Result:
    """libsecp256k1 straight through coincurve's cffi binding.

    The same three library calls as ``PublicKey.from_signature_and_message``
    plus serialization, minus its Python wrappers (~10% of an audit's time).
    """
    if len(message) != 32:  # the C function reads exactly 32 bytes
        return f"message hash must be 32 bytes, got {len(message)}"
    try:
        sig, public, out, size = _buffers.cdata
    except AttributeError:  # first call in this thread: cffi allocations cost as much as a call
        sig, public, out, size = _buffers.cdata = (
            _ffi.new("secp256k1_ecdsa_recoverable_signature *"),
            _ffi.new("secp256k1_pubkey *"),
            _ffi.new("unsigned char[65]"),
            _ffi.new("size_t *"),
        )
    ctx = _CONTEXT.ctx
    if not _secp.secp256k1_ecdsa_recoverable_signature_parse_compact(
        ctx, sig, signature[:64], recid
    ):
        return "signature does not recover: cannot parse it"
    if not _secp.secp256k1_ecdsa_recover(ctx, public, sig, message):
        return "signature does not recover: no public key for it"
    size[0] = 65
    _secp.secp256k1_ec_pubkey_serialize(ctx, out, size, public, _secp.SECP256K1_EC_UNCOMPRESSED)
    key = _ffi.buffer(out, 65)[1:]
    address = _addresses.get(key)
    if address is None:
        if len(_addresses) >= _ADDRESS_MEMO:
            _addresses.clear()
        address = _addresses[key] = keccak(key)[-20:]
    return address


_buffers = threading.local()
# A DON has few signers: each public key's address (keccak of the key) is hashed once.
_ADDRESS_MEMO = 4_096
_addresses: dict[bytes, bytes] = {}


def recover_chunk(jobs: Sequence[Job]) -> list[Result]:
    """Recover a chunk of jobs in this process (``recover_one`` each, one call layer less)."""
    if _CCPublicKey is None:  # pragma: no cover
        return [recover_one(m, s, v) for m, s, v in jobs]
    out: list[Result] = []
    for message, signature, v_offset in jobs:
        try:
            recid = _split(signature, v_offset)[2]
        except SignatureError as exc:
            out.append(str(exc))
            continue
        out.append(_recover_secp(message, signature, recid))
    return out


class Recoverer:
    """Recovers jobs as they are added: in worker processes for big audits, inline for small ones.

    Args:
        workers: processes to use; 1 recovers inline.
        expected: how many jobs are coming (small audits are not worth a pool).
    """

    def __init__(self, workers: int, expected: int) -> None:
        self._pool: Executor | None = None
        if workers > 1 and expected >= PARALLEL_THRESHOLD:
            self._pool = process_pool(workers)
        self._pending: list[Job] = []
        self._chunks: list[Future[list[Result]] | list[Result]] = []
        self._count = 0

    def add(self, job: Job) -> int:
        """Queue one job; return its index in the results."""
        self._pending.append(job)
        self._count += 1
        if len(self._pending) >= CHUNK:
            self._flush()
        return self._count - 1

    def _flush(self) -> None:
        if not self._pending:
            return
        jobs, self._pending = self._pending, []
        self._chunks.append(
            self._pool.submit(recover_chunk, jobs) if self._pool else recover_chunk(jobs)
        )

    def results(self) -> list[Result]:
        """Every result, in the order the jobs were added (waits for the workers)."""
        self._flush()
        out: list[Result] = []
        for chunk in self._chunks:
            out.extend(chunk if isinstance(chunk, list) else chunk.result())
        if self._pool is not None:
            self._pool.shutdown()
        return out
