"""Train the iris example: a numpy softmax (multinomial logistic) regression.

Reads iris.csv (Fisher's 1936 Iris data, 150 rows, shipped next to this file),
standardises the four features, fits W and b by full-batch gradient descent with
a little L2, prints the training accuracy and writes:

  weights.npz   mean, std (feature scaling), W (4 x 3), b (3,)
  labels.json   class names, in the order of W's columns

Run:  python train.py            (needs only numpy; deterministic, < 1 s)
"""
import csv
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def load_iris(path=HERE / "iris.csv"):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[k]) for k in FEATURES] for r in rows])
    names = [r["species"] for r in rows]
    labels = sorted(set(names))
    y = np.array([labels.index(n) for n in names])
    return x, y, labels


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(x, y, n_classes, steps=3000, lr=0.5, l2=1e-3):
    n, d = x.shape
    onehot = np.eye(n_classes)[y]
    w = np.zeros((d, n_classes))
    b = np.zeros(n_classes)
    for _ in range(steps):
        p = softmax(x @ w + b)
        g = (p - onehot) / n
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return w, b


def main():
    x, y, labels = load_iris()
    mean, std = x.mean(axis=0), x.std(axis=0)
    xs = (x - mean) / std
    w, b = train(xs, y, len(labels))
    pred = softmax(xs @ w + b).argmax(axis=1)
    acc = float((pred == y).mean())
    print(f"rows={len(y)} classes={labels}")
    for i, name in enumerate(labels):
        m = y == i
        print(f"  {name:<11} accuracy {float((pred[m] == i).mean()):.3f}")
    print(f"training accuracy: {acc:.4f}")
    if acc <= 0.90:
        raise SystemExit("training accuracy too low; not writing weights")
    np.savez(HERE / "weights.npz", mean=mean, std=std, W=w, b=b)
    (HERE / "labels.json").write_text(json.dumps(labels) + "\n")
    print(f"wrote {HERE / 'weights.npz'} and {HERE / 'labels.json'}")


if __name__ == "__main__":
    main()
