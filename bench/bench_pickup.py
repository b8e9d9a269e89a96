"""File written -> announcement received by a channel on 127.0.0.1, through the daemon.

    .venv/bin/python bench/bench_pickup.py [N]

Starts `syndicator run` as a subprocess with one Apprise `json://` channel pointed at a
webhook receiver in this process, writes N posts one at a time (each dated a minute
ago, written as editors do: temp file then rename) and measures from the rename to the
moment the receiver has the announcement. Target (issue 5): within 2 s.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import daemon_support as d  # noqa: E402
from tests.fakes.webhook import FakeWebhook  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory() as tmp, FakeWebhook() as hook:
        root = Path(tmp)
        site = root / "site"
        shutil.copytree(ROOT / "examples" / "site", site)
        cfg = d.write_config(root / "s.toml", site, f"json://127.0.0.1:{hook.port}/announce")
        proc = d.start(cfg, "run")
        try:
            if not d.wait(lambda: len(hook.posts("/announce")) >= 2, 60):
                raise SystemExit("the daemon did not announce the example's recent episodes")
            time.sleep(1)
            delays = []
            for i in range(n):
                before = len(hook.posts("/announce"))
                date = (datetime.now(UTC) - timedelta(minutes=1)).strftime(
                    "%Y-%m-%d %H:%M:%S +0000"
                )
                t0 = time.time()
                d.post(site, 1000 + i, f"Bench Episode {i}", date)
                if not hook.wait_for(lambda h, b=before: len(h.posts("/announce")) > b, 30):
                    raise SystemExit(f"post {i} was not announced within 30 s")
                delays.append(hook.posts("/announce")[-1].at - t0)
                time.sleep(0.3)
        finally:
            d.stop(proc)
    print(f"posts: {n}")
    print(f"file written -> announcement received: median {statistics.median(delays):.2f} s, "
          f"worst {max(delays):.2f} s (target 2 s)")  # fmt: skip


if __name__ == "__main__":
    main()
