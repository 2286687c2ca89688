"""The HTML report's per-node statistics read what the coordinator logs."""

from __future__ import annotations

from pathlib import Path

from vouch.verifier import AttestationLog, audit, keccak, render_html

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

    from vouch.verifier import Observation, sign_observation

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


def test_a_big_log_stays_a_page_buckets_its_plots_and_drills_into_the_failures(
    tmp_path: Path,
) -> None:
    import re
    import sqlite3

    from ..scripts import ROOT, load_script

    bench = load_script(ROOT / "scripts" / "bench" / "audit.py", "audit_bench")
    path = tmp_path / "log.db"
    signers, _ = bench.generate(path, 120)
    with sqlite3.connect(
        path
    ) as db:  # execution 51's first observation moved 30%, its signature now over another value
        db.execute(
            "UPDATE entries SET payload = replace(payload, ':3000000000000000000000}', "
            "':3900000000000000000000}') WHERE seq = 252"
        )
        db.execute(  # and execution 11's submission edited
            "UPDATE entries SET payload = replace(payload, '190000', '190001') WHERE seq = 55"
        )
    log = AttestationLog(path, readonly=True)
    report = audit(log, None, signers={(1, 1): (bench.F, signers)})
    failed = {r.execution_id for r in report.failures}
    assert len(failed) == 2 and len(report.failures) > 3
    page = render_html(report, log, columns=50, failures_shown=3, passing=10)
    plot = page.split('aria-label="faults over time"')[1].split("</svg>")[0]
    cells = re.findall(
        r'data-state="([a-z ]+)"><title>(0x[0-9A-Fa-f]{40}) in executions (\d+)–(\d+): ([^<]*)<',
        plot,
    )
    assert len(cells) == 3 * 40  # 3 nodes, 120 executions in columns of 3
    assert {(int(a), int(b)) for _, _, a, b, _ in cells} == {(i, i + 2) for i in range(1, 121, 3)}
    faulty = [(state, node, a, tally) for state, node, a, _, tally in cells if state != "ok"]
    assert faulty == [("bad signature", signers[0], "49", "2 ok, 1 bad signature")]
    assert "per 3 executions, by the worst" in page
    failures = page.split('id="failures"')[1].split("<h2>")[0]
    assert failures.count("<tr class=") == 3
    assert f"… and {len(report.failures) - 3:,} more" in failures
    assert page.count("<details id=") == 2 + 10 and page.count(" open>") == 2
    assert all(f'<details id="x{e}" open>' in page for e in failed)
    assert "Not shown: 108 more passing executions" in page
    assert page.index('id="omitted"') < page.index("<details id=")  # said before the list
