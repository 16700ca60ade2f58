#!/usr/bin/env python3
"""Puts runner's and PyTorch's training throughput side by side.

Reads the JSON files named on the command line — `runner bench train
--json` reports (objects with "train") and `benches/pytorch_reference.py`
reports (objects with "results", or its `--jsonl` files of one cell per
line) — and prints one Markdown table per
precision and batch with sequences/s and the ratios

- runner / best eager PyTorch (the faster of nn.Transformer and the
  hand-written blocks with SDPA and fused Adam),
- runner / compiled PyTorch (torch.compile, mode="reduce-overhead"),

for runner's eager step and, when measured, its CUDA-graph step. A second
table gives the process CPU time per step, which on a shared machine
measures the work done where wall time also counts the waiting.

`--json FILE` also writes the merged cells. Standard library only.
"""

import argparse
import json
import sys


def load(paths):
    """(runner cells, torch cells, device descriptions) from the report files."""
    runner, torch, devices = [], [], set()
    for path in paths:
        try:
            with open(path) as f:
                if path.endswith(".jsonl"):
                    # pytorch_reference.py --jsonl: one cell per line, kept when a run is cut short.
                    cells = [json.loads(line) for line in f if line.strip()]
                    report = {"results": cells, "torch": cells[0].get("torch") if cells else None,
                              "device_name": cells[0].get("device") if cells else None, "threads": "?"}
                else:
                    report = json.load(f)
        except (OSError, ValueError) as error:
            print(f"side_by_side: skipping {path}: {error}", file=sys.stderr)
            continue
        if "train" in report:
            runner.extend(report["train"])
            devices.add(f"runner on {report.get('device')} (libtorch {report.get('libtorch')}, {report.get('threads')} threads)")
        if "results" in report:
            torch.extend(report["results"])
            devices.add(f"PyTorch {report.get('torch')} on {report.get('device_name')} ({report.get('threads')} threads)")
    return runner, torch, sorted(devices)


def find(cells, **keys):
    for cell in cells:
        if all(cell.get(k) == v for k, v in keys.items()):
            return cell
    return None


def value(cell, field):
    return None if cell is None else cell.get(field)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt(x, digits=1, suffix=""):
    return "-" if x is None else f"{x:,.{digits}f}{suffix}"


def rows(runner, torch, field, higher_is_better):
    """One row per (precision, batch) that anything measured."""
    cells = sorted({(c["precision"], c["batch"]) for c in runner + torch}, key=lambda k: (k[0] != "fp32", k[0], k[1]))
    out = []
    for precision, batch in cells:
        eager = find(runner, precision=precision, batch=batch, mode="eager")
        graph = find(runner, precision=precision, batch=batch, mode="cuda-graph")
        t = {impl: find(torch, impl=impl, precision=precision, batch=batch) for impl in ("transformer", "handwritten", "compiled")}
        eager_values = [v for v in (value(t["transformer"], field), value(t["handwritten"], field)) if v is not None]
        best = (max if higher_is_better else min)(eager_values) if eager_values else None
        compiled = value(t["compiled"], field)

        def speedup(r, ref):
            # Ratios read as "times faster" for both throughput and time per step.
            return ratio(r, ref) if higher_is_better else ratio(ref, r)

        out.append(
            {
                "precision": precision,
                "batch": batch,
                "runner": value(eager, field),
                "runner_graph": value(graph, field),
                "transformer": value(t["transformer"], field),
                "handwritten": value(t["handwritten"], field),
                "compiled": compiled,
                "runner_vs_best_eager": speedup(value(eager, field), best),
                "runner_vs_compiled": speedup(value(eager, field), compiled),
                "graph_vs_best_eager": speedup(value(graph, field), best),
                "graph_vs_compiled": speedup(value(graph, field), compiled),
                "notes": "; ".join(
                    f"{name}: {c['note'][:160]}"
                    for name, c in (("runner", eager), ("runner graph", graph), *t.items())
                    if c is not None and c.get("note") and (c.get(field) is None or "graph" in name or "failed" in c["note"])
                ),
            }
        )
    return out


def markdown(table, unit, digits, with_graph):
    head = ["precision", "batch", f"runner {unit}"]
    if with_graph:
        head.append(f"runner graph {unit}")
    head += ["nn.Transformer", "hand-written+SDPA+fused Adam", "compiled (reduce-overhead)", "runner / best eager", "runner / compiled"]
    if with_graph:
        head += ["graph / best eager", "graph / compiled"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        cells = [r["precision"], str(r["batch"]), fmt(r["runner"], digits)]
        if with_graph:
            cells.append(fmt(r["runner_graph"], digits))
        cells += [fmt(r["transformer"], digits), fmt(r["handwritten"], digits), fmt(r["compiled"], digits)]
        cells += [fmt(r["runner_vs_best_eager"], 2, "x"), fmt(r["runner_vs_compiled"], 2, "x")]
        if with_graph:
            cells += [fmt(r["graph_vs_best_eager"], 2, "x"), fmt(r["graph_vs_compiled"], 2, "x")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="JSON reports of runner bench train and pytorch_reference.py")
    parser.add_argument("--json", help="also write the merged rows here")
    args = parser.parse_args()
    runner, torch, devices = load(args.reports)
    if not runner and not torch:
        print("side_by_side: no measurements in the given reports", file=sys.stderr)
        return 1
    with_graph = any(c.get("mode") == "cuda-graph" for c in runner)
    throughput = rows(runner, torch, "seq_per_s", True)
    cpu = rows(runner, torch, "cpu_ms_per_step", False)
    print("\n".join(f"- {d}" for d in devices))
    print()
    print("Sequences per second (higher is better; ratios > 1 mean runner is faster):")
    print()
    print(markdown(throughput, "seq/s", 1, with_graph))
    notes = [f"- {r['precision']} batch {r['batch']}: {r['notes']}" for r in throughput if r["notes"]]
    if notes:
        print()
        print("Notes:")
        print("\n".join(notes))
    print()
    print("Process CPU time per step, ms (all threads; ratios > 1 mean runner does less work):")
    print()
    print(markdown(cpu, "cpu ms", 0, with_graph))
    graph_checks = [c for c in runner if c.get("graph_check") is not None]
    if graph_checks:
        print()
        print("CUDA graph vs eager, same start, largest relative loss difference: "
              + ", ".join(f"{c['precision']}/{c['batch']}: {c['graph_check']:.1e}" for c in graph_checks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"devices": devices, "throughput": throughput, "cpu_ms_per_step": cpu, "runner": runner, "torch": torch}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
