"""The HTML report's per-node statistics read what the coordinator logs."""

from __future__ import annotations

from pathlib import Path

from verifier import AttestationLog, audit, keccak, render_html

NODES = ["0x" + f"{i:02x}" * 20 for i in (1, 2, 3)]


def test_node_latency_from_the_logged_microseconds_is_in_the_table_and_plot(tmp_path: Path) -> None:
    log = AttestationLog(tmp_path / "log.db")
    execution = keccak(b"one")
    observations = [
        {"observation": {"node": n, "value": 3000 + i, "feed": "ETH/USD"}, "signature": "0x00"}
        for i, n in enumerate(NODES)
    ]
    latency_us = {NODES[0]: 1_300, NODES[1]: 12_345, NODES[2]: 40_000}
    log.append(
        execution,
        "observations",
        {
            "observations": observations,
            "latency_us": latency_us,
            "latency_ms": {n: round(us / 1000) for n, us in latency_us.items()},
        },
    )
    log.append(execution, "consensus", {"mode": "median", "value": 3001, "observations_seq": 1})
    page = render_html(audit(log), log)
    rows = {n: page.split(n)[1].split("</tr>")[0] for n in NODES}
    assert "<td>1.3</td>" in rows[NODES[0]]
    assert "<td>12.3</td>" in rows[NODES[1]]
    assert "<td>40.0</td>" in rows[NODES[2]]
    assert 'aria-label="latency per node"' in page
    assert "No latencies in this log" not in page
