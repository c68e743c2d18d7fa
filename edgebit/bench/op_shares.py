"""Where a decoded token's time goes, from ONNX Runtime's profiling JSON (edgebit-runner --profile): the share
of each operator type in the node time of the decode steps, the prefill steps left out.

The runner calls Run once for the prompt and once per further token, so with G generated tokens every G-th
`model_run` event (counting from the first) is a prefill."""

from __future__ import annotations

import json
from pathlib import Path


def ort_decode_shares(profile_json: Path, gen_len: int) -> list[dict]:
    """Rows {op, calls_per_token, ms_per_token, share}, largest first, over the decode Runs of the profile."""
    events = json.loads(Path(profile_json).read_text())
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    decode = [(e["ts"], e["ts"] + e["dur"]) for i, e in enumerate(runs) if i % gen_len != 0]
    if not decode:
        return []
    nodes = sorted((e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")),
                   key=lambda e: e["ts"])
    totals: dict[str, list[float]] = {}
    j = 0
    for start, end in decode:  # both lists are in time order: one merge pass
        while j < len(nodes) and nodes[j]["ts"] < start:
            j += 1
        while j < len(nodes) and nodes[j]["ts"] <= end:
            op = nodes[j].get("args", {}).get("op_name", "?")
            row = totals.setdefault(op, [0, 0.0])
            row[0] += 1
            row[1] += nodes[j]["dur"] / 1000.0
            j += 1
    steps = len(decode)
    node_ms = sum(ms for _, ms in totals.values()) or 1.0
    run_ms = sum(end - start for start, end in decode) / 1000.0
    rows = [{"op": op, "calls_per_token": calls / steps, "ms_per_token": ms / steps, "share": ms / node_ms}
            for op, (calls, ms) in totals.items()]
    rows.append({"op": "(between nodes)", "calls_per_token": 0, "ms_per_token": (run_ms - node_ms) / steps,
                 "share": None})
    return sorted(rows, key=lambda r: -r["ms_per_token"])
