#!/usr/bin/env python3
"""The end-to-end time of an experiment, measured or projected from a bounded run.

`scripts/gpu-run.sh`'s `e2e` phase trains `experiments/pathetique-maestro-scale.kdl`
(the write-up's sizes on about 7 million notes) for a fixed wall time, then
stops it with SIGINT (runner checkpoints and stops after the current step).
A whole run would take longer than a GPU session lends (hf-t5 alone trains 25
epochs), so this script reads what each run finished and projects the rest:

- a run that is done: its measured time (the last `seconds` of metrics.csv);
- otherwise, from its finished epochs (metrics.csv: `seconds` since the run
  started, evaluation included): seconds per epoch x the epochs it asks for;
- a run with no finished epoch: its steps per second (lr.csv's steps over
  the wall time) x the steps it asks for (from `--train-windows` and its
  batch size, accumulation and epochs), evaluation not included.

The runs trained at the same time on one device (`--jobs`), so the
projection is for training them that way; the experiment's end-to-end
time is the data preparation plus the longest run. Prints Markdown.

    end_to_end.py --store DIR --experiment NAME --data-seconds S --wall-seconds W \
        --train-windows N
"""

import argparse
import csv
import json
import os
import sys


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def describe(config):
    """A short label: architecture, encoder, schedule, loss."""
    model = config.get("model", {})
    schedule = config.get("schedule", {})
    loss = config.get("loss", {})
    return f"{model.get('architecture', '?')}, {config.get('encoder', '?')}, {schedule.get('kind', '?')}, {loss.get('kind', '?')}"


def project(run_dir, wall_seconds, train_windows):
    config = json.load(open(os.path.join(run_dir, "config.json")))
    train = config.get("train", {})
    epochs_total = int(train.get("epochs", 0))
    epochs = read_csv(os.path.join(run_dir, "metrics.csv"))
    steps_done = len(read_csv(os.path.join(run_dir, "lr.csv")))
    done = os.path.exists(os.path.join(run_dir, "summary.json"))
    row = {
        "run": os.path.basename(run_dir)[:8],
        "setup": describe(config),
        "epochs": f"{len(epochs)}/{epochs_total}",
        "steps": steps_done,
        "s/epoch": None,
        "total_s": None,
        "how": "",
    }
    if epochs:
        last = float(epochs[-1]["seconds"])
        per_epoch = last / len(epochs)
        row["s/epoch"] = per_epoch
        if done:
            row["total_s"], row["how"] = last, "measured"
        else:
            row["total_s"], row["how"] = per_epoch * epochs_total, f"projected from {len(epochs)} epoch(s)"
        if epochs_total == 0:
            row["total_s"] = None
    elif steps_done:
        rate = steps_done / wall_seconds
        batches = -(-train_windows // int(train.get("batch-size", 1)))
        steps_total = epochs_total * -(-batches // int(train.get("accumulate", 1)))
        if config.get("train", {}).get("max-steps"):
            steps_total = min(steps_total, int(train["max-steps"]))
        row["total_s"] = steps_total / rate
        row["how"] = f"no epoch finished: {rate:.1f} steps/s x {steps_total:,} steps, evaluation not included"
    else:
        row["how"] = "did not start"
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data-seconds", type=float, required=True, help="data preparation (cold cache)")
    parser.add_argument("--wall-seconds", type=float, required=True, help="how long the bounded exec ran")
    parser.add_argument("--train-windows", type=int, required=True, help="training windows of the dataset")
    args = parser.parse_args()
    root = os.path.join(args.store, args.experiment)
    if not os.path.isdir(root):
        sys.exit(f"end_to_end: no runs of {args.experiment} in {args.store}")
    runs = sorted(
        os.path.join(root, d) for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "config.json"))
    )
    rows = [project(r, args.wall_seconds, args.train_windows) for r in runs]
    fmt = lambda x: "-" if x is None else f"{x:,.0f}"
    print(f"## End to end: {args.experiment}\n")
    print(f"Data preparation (cold cache): {args.data_seconds:.1f} s; bounded exec: {args.wall_seconds:.0f} s of wall time.\n")
    print("| run | setup | epochs done | steps done | s / epoch | total s | how |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['setup']} | {r['epochs']} | {r['steps']:,} | {fmt(r['s/epoch'])} | {fmt(r['total_s'])} | {r['how']} |")
    totals = [r["total_s"] for r in rows]
    if rows and all(t is not None for t in totals):
        end_to_end = args.data_seconds + max(totals)
        print(f"\nEnd to end (data preparation + the longest run, runs side by side): **{end_to_end:,.0f} s** "
              f"({end_to_end / 60:.1f} min).")
    else:
        print("\nEnd to end: not projected (a run did not start).")


if __name__ == "__main__":
    main()
