"""color-match: name the dominant colour of an image (file-contract package).

Contract (see config.json): the platform writes the request's image to
input/1.jpeg and its text to 2.txt in a fresh working copy, runs
`python inference.py`, then reads output/output.json.

The image may be any format Pillow opens (JPEG, PNG, GIF, BMP, WebP, ...); the
file name is only the contract path. The text is a colour word or a question
("is it red?"); the output says whether the predicted colour is one it mentions:

  {"label": "red", "scores": {"red": 0.97, ...}, "text": "red",
   "text_colors": ["red"], "matches_text": true}

The model is a softmax classifier over a 6x6x6 RGB colour histogram; its
weights are in weights.json next to this file (written by train.py).

Optional arguments for local use: python inference.py [IMAGE] [TEXT] [OUTPUT].
Exit status: 0 ok, 2 unreadable/missing image, 3 missing or bad weights.
"""
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BINS = 6          # histogram bins per RGB channel -> BINS**3 features
SIDE = 64         # images are resized to SIDE x SIDE before the histogram

# words in the request text that name one of the model's colours
SYNONYMS = {
    "grey": "gray", "violet": "purple", "magenta": "pink", "turquoise": "cyan",
    "aqua": "cyan", "navy": "blue", "scarlet": "red", "crimson": "red",
    "lime": "green", "gold": "yellow", "golden": "yellow",
}


def features(img):
    """Normalised BINS^3 RGB histogram of a Pillow image (any mode)."""
    from PIL import Image

    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    img = img.convert("RGB").resize((SIDE, SIDE), Image.BILINEAR)
    a = np.asarray(img, dtype=np.uint8).reshape(-1, 3).astype(np.int64) * BINS // 256
    idx = (a[:, 0] * BINS + a[:, 1]) * BINS + a[:, 2]
    h = np.bincount(idx, minlength=BINS ** 3).astype(np.float64)
    return h / h.sum()


def load_model(path=HERE / "weights.json"):
    m = json.loads(Path(path).read_text(encoding="utf-8"))
    w = np.asarray(m["W"], dtype=np.float64)
    b = np.asarray(m["b"], dtype=np.float64)
    labels = list(m["labels"])
    if w.shape != (BINS ** 3, len(labels)) or b.shape != (len(labels),):
        raise ValueError(f"weights shape {w.shape}/{b.shape} does not fit {len(labels)} labels")
    return labels, w, b


def classify(img, labels, w, b):
    z = features(img) @ w + b
    p = np.exp(z - z.max())
    p /= p.sum()
    return labels[int(p.argmax())], {l: round(float(v), 4) for l, v in zip(labels, p)}


def colours_in(text, labels):
    found = []
    for word in re.findall(r"[a-z]+", text.lower()):
        word = SYNONYMS.get(word, word)
        if word in labels and word not in found:
            found.append(word)
    return found


def open_image(path):
    from PIL import Image

    img = Image.open(path)
    img.draft("RGB", (SIDE * 2, SIDE * 2))   # JPEG: decode at reduced size, fast
    img.load()                               # force decoding now (truncated files fail here)
    return img


def main(argv):
    image_path = argv[1] if len(argv) > 1 else "input/1.jpeg"
    text_path = argv[2] if len(argv) > 2 else "2.txt"
    output_path = argv[3] if len(argv) > 3 else "output/output.json"

    try:
        labels, w, b = load_model()
    except Exception as e:  # noqa: BLE001 - report any problem with the shipped weights
        print(f"color-match: cannot load weights.json: {e}", file=sys.stderr)
        return 3

    if not os.path.isfile(image_path):
        print(f"color-match: input image not found: {image_path}", file=sys.stderr)
        return 2
    try:
        img = open_image(image_path)
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for bad files
        print(f"color-match: cannot read image {image_path!r} "
              f"({os.path.getsize(image_path)} bytes): {type(e).__name__}: {e}",
              file=sys.stderr)
        return 2

    try:
        text = Path(text_path).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        text = ""

    label, scores = classify(img, labels, w, b)
    mentioned = colours_in(text, labels)
    result = {
        "label": label,
        "scores": scores,
        "text": text,
        "text_colors": mentioned,
        "matches_text": label in mentioned,
    }
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    print(f"color-match: {label} ({scores[label]:.2f}); text colours {mentioned}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
