"""Recover many signers at once, across processes: the audit's hot loop.

Each job is (message hash, 65-byte signature, v offset). Workers return the
20-byte signer address, or a short reason when the signature is unusable, with
exactly the rules of ``recover_report_signer`` (low-s only, v in range).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

from ._canonical import keccak
from ._errors import SignatureError
from ._signing import _split

_CCPublicKey: Any
try:
    from coincurve import PublicKey as _CCPublicKey
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
    try:
        public = _CCPublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), message, hasher=None
        )
    except Exception as exc:  # noqa: BLE001 - libsecp256k1 raises plain Exception
        return f"signature does not recover: {exc}"
    return keccak(public.format(compressed=False)[1:])[-20:]


def recover_chunk(jobs: Sequence[Job]) -> list[Result]:
    """Recover a chunk of jobs in this process."""
    return [recover_one(m, s, v) for m, s, v in jobs]


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
