"""Same time budget, different models: the results table of docs/en/recipe.md.

Trains each row with ``--time-budget`` minutes on the given data and prints one JSON line per
row, then a Markdown table. Rows run one after another (never two trainings at once on 2 cores).

    python benchmarks/accuracy_table.py --data-dir ../shared/data/dogs-vs-cats --minutes 5
"""
from __future__ import annotations

import argparse
import json
import time


from paddle_catdog.config import TrainConfig
from paddle_catdog.train import fit

ROWS = [
    ("cnn", {"pooling": "max"}),
    ("cnn", {"pooling": "avg"}),
    ("cnn", {"pooling": "l2"}),
    ("resnet18", {}),
    ("resnet34", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget per row")
    parser.add_argument("--image-size", type=int, default=TrainConfig.image_size)
    parser.add_argument("--output", default="output/table")
    parser.add_argument("--only", default="", help="comma-separated row labels to run")
    args = parser.parse_args()
    results = []
    for model, options in ROWS:
        label = model + "".join(f"-{v}" for v in options.values())
        if args.only and label not in args.only.split(","):
            continue
        cfg = TrainConfig(data_dir=args.data_dir, model=model, image_size=args.image_size,
                          time_budget=args.minutes, output=f"{args.output}/{label}",
                          progress=False, log_images=False, **options)
        start = time.time()
        best = fit(cfg)
        meta = json.loads((best / "meta.json").read_text())
        last = json.loads((best.parent / "last" / "meta.json").read_text())
        row = {"row": label, "model": model, **options, "image_size": args.image_size,
               "epochs": last["epoch"], "minutes": round((time.time() - start) / 60, 2),
               "val_acc": round(meta["best_metric"], 4),
               "final_val_acc": round(last["metrics"]["val_acc"], 4)}
        print(json.dumps(row), flush=True)
        results.append(row)
    print("\n| model | input | epochs | wall time (min) | best val acc | final val acc |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['row']} | {r['image_size']} | {r['epochs']} | {r['minutes']} | "
              f"{r['val_acc']:.4f} | {r['final_val_acc']:.4f} |")


if __name__ == "__main__":
    main()
