import hashlib
import json
import os
import sys

with open("input/1.jpeg", "rb") as f:
    image = f.read()
with open("2.txt", encoding="utf-8") as f:
    text = f.read()

print("inference.py: read", len(image), "image bytes")
print("inference.py: a line on stderr", file=sys.stderr)
os.makedirs("output", exist_ok=True)
with open("output/output.json", "w", encoding="utf-8") as f:
    json.dump({
        "image_bytes": len(image),
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "text": text,
        "python": sys.executable,
        "cwd": os.getcwd(),
    }, f)
