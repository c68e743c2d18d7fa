"""The profile shown three ways: a table for the terminal, the JSON, and a self-contained HTML page (inline SVG
per-token latency plot, memory figures; no scripts, styles or fonts from elsewhere)."""

from __future__ import annotations

import html
import json

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def label(r: dict) -> str:
    threads = r.get("threads") or "default"
    return f"{r.get('artifact', '').rstrip('/').split('/')[-1]} · {r.get('device')} · {threads} threads"


def mb(x) -> str:
    return "n/a" if x is None or x < 0 else f"{x / 2**20:,.1f} MB"


def num(x, fmt="{:,.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _mem(r: dict, f) -> str:
    """A figure of the runner's memory split (/proc/self/smaps at the end of the runs), n/a without one."""
    m = r.get("memory") or {}
    return f(m) if m.get("available") else "n/a"


ROWS = [
    ("runtime", lambda r: f"{r['runtime']} {r['runtime_version']}"),
    ("kernel variant", lambda r: r["kernel_variant"]),
    ("CPU", lambda r: f"{r.get('arch', '')} {r.get('cpu_model', '')} ({r.get('online_cpus')} cpus)"),
    ("threads", lambda r: str(r["threads"] or "default")),
    ("prompt / generated tokens", lambda r: f"{r['prompt_tokens']} / {r['gen_tokens']}"),
    ("load", lambda r: f"{num(r['load_ms'], '{:,.1f}')} ms"),
    ("time to first token", lambda r: f"{num(r['ttft_ms'], '{:,.2f}')} ms"),
    ("prefill", lambda r: f"{num(r['prefill_tokens_per_s'], '{:,.1f}')} tok/s"),
    ("decode", lambda r: f"{num(r['decode_tokens_per_s'], '{:,.2f}')} tok/s"),
    ("token latency p50 / p90 / max", lambda r: " / ".join(num(r["token_latency_ms"][k], "{:,.2f}")
                                                          for k in ("p50", "p90", "max")) + " ms"),
    ("RSS after load", lambda r: mb(r["rss_after_load_bytes"])),
    ("peak RSS (VmHWM)", lambda r: mb(r["peak_rss_bytes"])),
    ("weights mapped (resident / file)", lambda r: _mem(r, lambda m: f"{mb(m['weights_mapped'])} / "
                                                                    f"{mb(m['weights_file'])}")),
    ("anonymous (heap, copies, activations)", lambda r: _mem(r, lambda m: mb(m["anonymous"]))),
    ("KV cache (within anonymous)", lambda r: _mem(r, lambda m: mb(m["kv_cache"]))),
    ("libraries (file-backed)", lambda r: _mem(r, lambda m: mb(m["other_file"]))),
    ("artifact size", lambda r: mb(r["artifact_bytes"])),
    ("peak RSS / artifact", lambda r: num(r["peak_rss_bytes"] / r["artifact_bytes"], "{:.2f}x")
     if r.get("artifact_bytes") else "n/a"),
]

EMULATION_NOTE = ("timings under qemu-aarch64 are EMULATION (an x86 host interpreting ARM code): they check the ARM "
                  "path end to end and say nothing about an ARM device's speed; RSS includes qemu itself")


def print_table(results: list[dict], console) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="edgebit profile", show_lines=False)
    table.add_column("")
    for r in results:  # labels hold artifact and device names: data, not markup
        table.add_column(escape(label(r)) + (" (emulated)" if r.get("emulated") else ""), justify="right")
    for name, f in ROWS:
        table.add_row(name, *[f(r) for r in results])
    console.print(table)
    if any(r.get("emulated") for r in results):
        console.print(f"[bold yellow]note:[/] {EMULATION_NOTE}")


def latency_svg(results: list[dict], width: int = 720, height: int = 300) -> str:
    """Per-token decode latency (last repetition) of every result, one polyline each."""
    pad_l, pad_r, pad_t, pad_b = 60, 20, 20, 40
    series = [r.get("token_latencies_ms") or [] for r in results]
    n = max((len(s) for s in series), default=0)
    top = max((max(s) for s in series if s), default=1.0) * 1.1 or 1.0
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i, v):
        x = pad_l + (pw * i / max(1, n - 1))
        return f"{x:.1f},{pad_t + ph - ph * v / top:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="per-token decode latency">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#999"/>']
    for k in range(5):
        v = top * k / 4
        y = pad_t + ph - ph * k / 4
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{pad_l + pw}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{pad_l - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{v:.3g}</text>')
    parts.append(f'<text x="{pad_l + pw / 2}" y="{height - 8}" font-size="12" text-anchor="middle">'
                 f'decode step (token 2 .. {n + 1})</text>')
    parts.append(f'<text x="14" y="{pad_t + ph / 2}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 14 {pad_t + ph / 2})">ms per token</text>')
    for j, s in enumerate(series):
        if not s:
            continue
        color = COLORS[j % len(COLORS)]
        pts = " ".join(xy(i, v) for i, v in enumerate(s))
        parts.append(f'<polyline class="latency" fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<rect x="{pad_l + 10}" y="{pad_t + 8 + 16 * j}" width="12" height="3" fill="{color}"/>'
                     f'<text x="{pad_l + 28}" y="{pad_t + 13 + 16 * j}" font-size="11">{html.escape(label(results[j]))}'
                     '</text>')
    parts.append("</svg>")
    return "".join(parts)


def memory_svg(results: list[dict], width: int = 720) -> str:
    """Artifact size, RSS after load and peak RSS per result, as horizontal bars on one scale."""
    bars = []
    for r in results:
        for name, key, color in (("artifact", "artifact_bytes", "#bbbbbb"), ("RSS after load", "rss_after_load_bytes",
                                 "#6baed6"), ("peak RSS", "peak_rss_bytes", "#08519c")):
            bars.append((f"{label(r)}: {name}", max(0, r.get(key) or 0), color))
    top = max((b[1] for b in bars), default=1) or 1
    row, left = 22, 330
    height = row * len(bars) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="memory">']
    for i, (name, v, color) in enumerate(bars):
        y = 5 + i * row
        w = (width - left - 90) * v / top
        parts.append(f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{html.escape(name)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="14" fill="{color}"/>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="11">{mb(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(results: list[dict]) -> str:
    emulated = any(r.get("emulated") for r in results)
    head = "".join(f"<th>{html.escape(label(r))}{' (emulated)' if r.get('emulated') else ''}</th>" for r in results)
    rows = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{html.escape(f(r))}</td>" for r in results)
                   + "</tr>" for name, f in ROWS)
    devices = ", ".join(sorted({html.escape(r.get("device_description") or r.get("device", "")) for r in results}))
    names = sorted({f"{r.get('runner', 'edgebit-runner')} ({r['runtime']} {r['runtime_version']})" for r in results})
    runners = ("Runners: " if len(names) > 1 else "Runner: ") + html.escape(", ".join(names))
    banner = f'<p class="emulation"><strong>Emulation:</strong> {html.escape(EMULATION_NOTE)}.</p>' if emulated else ""
    data = html.escape(json.dumps(results, indent=1))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgebit profile</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; }} td {{ text-align: right; }} thead th {{ background: #eee; }}
.emulation {{ background: #fff3cd; border: 1px solid #e0b000; padding: .6em 1em; }}
pre {{ background: #f6f6f6; padding: 1em; overflow: auto; font-size: 11px; }}
</style></head><body>
<h1>edgebit profile</h1>
<p>Device: {devices}. {runners}: prompt prefill, then greedy decode with the KV cache.</p>
{banner}
<h2>Summary</h2>
<table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table>
<h2>Per-token decode latency</h2>
{latency_svg(results)}
<h2>Memory</h2>
<p>Peak RSS is the process's VmHWM; RSS after load is VmRSS once the session is created. The split (weights
mapped from the artifact's files, anonymous memory, the KV cache's share of it, libraries) is /proc/self/smaps at
the end of the runs.</p>
{memory_svg(results)}
<h2>Raw JSON</h2>
<pre>{data}</pre>
</body></html>
"""
