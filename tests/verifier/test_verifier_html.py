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


def test_faults_over_time_mark_absent_deviant_and_badly_signed_answers(tmp_path: Path) -> None:
    import re

    from eth_account import Account

    from verifier import Observation, sign_observation

    keys = [bytes([i]) * 32 for i in range(1, 5)]
    nodes = [Account.from_key(k).address for k in keys]
    log = AttestationLog(tmp_path / "log.db")
    rounds = [  # (which nodes answer, their values); the consensus is the median
        ([0, 1, 2], [3000, 3001, 3002]),  # all fine; node 3 absent
        ([0, 1, 3], [3000, 3001, 3900]),  # node 3 is 30% off
        ([1, 2, 3], [3000, 3001, 3002]),  # node 0 absent
    ]
    for i, (who, values) in enumerate(rounds):
        execution = keccak(bytes([i]))
        signed = [
            sign_observation(
                Observation(request_id="r", feed="ETH/USD", value=v, observed_at=i, node=nodes[n]),
                keys[n],
            ).model_dump(mode="json")
            for n, v in zip(who, values, strict=True)
        ]
        if i == 2:  # node 2's signature is swapped for node 1's
            signed[1]["signature"] = signed[0]["signature"]
        don = {"forwarder": "0x" + "fa" * 20, "don_id": 1, "config_version": 1}
        seq = log.append(execution, "observations", {"observations": signed, "don": don}).seq
        log.append(
            execution,
            "consensus",
            {"mode": "median", "value": 3001, "observations_seq": seq, "f": 1},
        )
    page = render_html(audit(log), log)
    plot = page.split('aria-label="faults over time"')[1].split("</svg>")[0]
    cells = re.findall(r'data-state="([a-z ]+)"><title>(0x[0-9A-Fa-f]{40}) in execution (\d)', plot)
    state = {(node, int(i)): s for s, node, i in cells}
    assert len(state) == 4 * 3
    assert state[(nodes[3], 1)] == "absent" and state[(nodes[0], 3)] == "absent"
    assert state[(nodes[3], 2)] == "deviant"
    assert state[(nodes[2], 3)] == "bad signature"
    faulty = {k for k, s in state.items() if s not in ("ok", "absent")}
    assert faulty == {(nodes[3], 2), (nodes[2], 3)}
    assert "Faults over time" in page and "more than 100 bps from consensus" in page
    # per-execution drill-down: one <details> per execution, the failing one opened, with its entries
    bad = "0x" + keccak(bytes([2])).hex()
    assert page.count("<details id=") == 3
    opened = page.split(f'<details id="x{bad}" open>')[1].split("</details>")[0]
    assert "FAILED" in opened
    assert "observation signatures" in opened
    assert "<td>observations</td>" in opened
    assert page.count(" open>") == 1
