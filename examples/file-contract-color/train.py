"""Train the color-match example on synthetic images (no downloads).

Each training image is filled mostly (55-100 % of its area) with one colour drawn
from a class's HSV range, plus a few distractor shapes in other colours, pixel
noise and sometimes a JPEG round-trip. The feature is inference.features() (a
6x6x6 RGB histogram); the model is a numpy softmax regression. Writes
weights.json (labels, W, b) and the quickstart files sample.png / sample.txt.

Run:  python train.py        (needs numpy and pillow; deterministic, ~15 s)
"""
import colorsys
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from inference import BINS, classify, features, open_image

HERE = Path(__file__).resolve().parent

# class -> (hue ranges in degrees, saturation range, value range)
COLOURS = {
    "red":    ([(-12, 10)], (0.65, 1.0), (0.45, 1.0)),
    "orange": ([(20, 36)], (0.75, 1.0), (0.8, 1.0)),
    "yellow": ([(50, 62)], (0.6, 1.0), (0.8, 1.0)),
    "green":  ([(90, 150)], (0.5, 1.0), (0.35, 1.0)),
    "cyan":   ([(175, 195)], (0.5, 1.0), (0.6, 1.0)),
    "blue":   ([(215, 245)], (0.55, 1.0), (0.4, 1.0)),
    "purple": ([(265, 290)], (0.5, 1.0), (0.35, 0.85)),
    "pink":   ([(300, 355)], (0.2, 0.6), (0.85, 1.0)),
    "black":  ([(0, 360)], (0.0, 1.0), (0.0, 0.12)),
    "white":  ([(0, 360)], (0.0, 0.06), (0.93, 1.0)),
    "gray":   ([(0, 360)], (0.0, 0.06), (0.35, 0.7)),
}
LABELS = list(COLOURS)


def sample_rgb(rng, label):
    hues, (s0, s1), (v0, v1) = COLOURS[label]
    h0, h1 = hues[rng.integers(len(hues))]
    h = (rng.uniform(h0, h1) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(s0, s1), rng.uniform(v0, v1))
    return int(r * 255), int(g * 255), int(b * 255)


def make_image(rng, label, side=None):
    side = side or int(rng.choice([16, 32, 48, 64, 96, 128]))
    img = Image.new("RGB", (side, side), sample_rgb(rng, label))
    draw = ImageDraw.Draw(img)
    budget = rng.uniform(0.0, 0.45) * side * side   # area left to distractors
    for _ in range(int(rng.integers(0, 4))):
        other = LABELS[int(rng.integers(len(LABELS)))]
        if other == label:
            continue
        area = rng.uniform(0.2, 1.0) * budget
        budget -= area
        w = max(1, min(side, int(np.sqrt(area) * rng.uniform(0.6, 1.6))))
        h = max(1, min(side, int(area / w)))
        x, y = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape([x, y, x + w - 1, y + h - 1], fill=sample_rgb(rng, other))
    a = np.asarray(img, dtype=np.float64)
    a += rng.normal(0, rng.uniform(0, 12), a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.4:   # exercise the JPEG decode path as the service sees it
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(50, 95)))
        buf.seek(0)
        img = open_image(buf)
    return img


def dataset(rng, per_class):
    x, y = [], []
    for i, label in enumerate(LABELS):
        for _ in range(per_class):
            x.append(features(make_image(rng, label)))
            y.append(i)
    return np.array(x), np.array(y)


def train(x, y, steps=4000, lr=2.0, l2=1e-4):
    n, d = x.shape
    k = len(LABELS)
    onehot = np.eye(k)[y]
    xs = x * 10.0          # histograms are small fractions; scale for faster convergence
    w, b = np.zeros((d, k)), np.zeros(k)
    for _ in range(steps):
        z = xs @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / n
        w -= lr * (xs.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return w * 10.0, b     # fold the scaling into W so inference uses raw histograms


def accuracy(w, b, x, y):
    return float(((x @ w + b).argmax(axis=1) == y).mean())


def main():
    rng = np.random.default_rng(0)
    xtr, ytr = dataset(rng, 300)
    xte, yte = dataset(rng, 100)
    w, b = train(xtr, ytr)
    print(f"features={BINS ** 3} classes={len(LABELS)} train={len(ytr)} test={len(yte)}")
    print(f"train accuracy: {accuracy(w, b, xtr, ytr):.4f}")
    print(f"held-out accuracy: {accuracy(w, b, xte, yte):.4f}")
    pred = (xte @ w + b).argmax(axis=1)
    for i, label in enumerate(LABELS):
        m = yte == i
        print(f"  {label:<7} {float((pred[m] == i).mean()):.2f}")

    model = {
        "labels": LABELS,
        "bins": BINS,
        "W": [[round(float(v), 4) for v in row] for row in w],
        "b": [round(float(v), 4) for v in b],
    }
    (HERE / "weights.json").write_text(json.dumps(model, separators=(",", ":")) + "\n")

    # quickstart sample: a 32x32 mostly-red image with a small blue square
    sample = Image.new("RGB", (32, 32), (220, 30, 40))
    ImageDraw.Draw(sample).rectangle([20, 20, 29, 29], fill=(30, 60, 200))
    sample.save(HERE / "sample.png", optimize=True)
    (HERE / "sample.txt").write_text("red\n")
    label, scores = classify(sample, LABELS, w, b)
    print(f"sample.png -> {label} ({scores[label]:.3f})")


if __name__ == "__main__":
    main()
