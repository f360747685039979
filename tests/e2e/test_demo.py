"""`make demo` as a test: the whole story runs, every managed secret ends up signing in, and the
demo's own check finds no secret value in what it printed."""

from __future__ import annotations

import subprocess
import sys


def test_the_demo_runs_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rotation", "demo", "--propagation-seconds", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "queued a reconcile request (event:" in out  # the SecretNearExpiry event drove a rotation
    assert "sweep enqueued 0 request(s)" in out  # the timer sweep found it done
    assert "Most likely cause: the value is the Secret ID" in out  # diagnose named the mistake
    assert "HTTP 202" in out  # the emergency roll was accepted over HTTP
    # Retirement on evidence: held while the cached old value still signs in, released after it stops.
    evidence = out[out.index("== 4. Retirement on evidence") : out.index("== 5.")]
    assert "payments service, old value: signed in" in evidence
    held = evidence.index("retirement held: credential")
    assert "signed in on" in evidence[held:] and "something still uses it" in evidence[held:]
    assert evidence.index("Graph removePassword -> retired credential") > held
    assert "the old value now: refused (AADSTS7000215)" in evidence
    rows = [line.split() for line in out.splitlines() if line.startswith(("payments-api ", "reports-"))]
    assert len(rows) == 3 and all(row[-2:] == ["signs", "in"] for row in rows)  # every latest value gets a token
    assert "FAILS" not in out
    assert "No secret value appeared in this output" in out
    assert "Traceback" not in done.stderr
