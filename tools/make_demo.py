#!/usr/bin/env python3
"""Make the demo that `r2gen-report` runs when it is given no --model: a small R2GenGPT-shaped
model with random (untrained) weights and a synthetic chest-radiograph-like image.

The model is the project's tiny test model (tests/data/r2gen-tiny: a Swin with 4 stages, a
2-layer LLaMA, its own 512-piece SentencePiece vocabulary), converted with tools/r2gen_convert.py.
The image is drawn here. Both are deterministic, so every build makes the same files.

usage: make_demo.py OUT_DIR
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(os.path.dirname(HERE), "tests", "data", "r2gen-tiny")


def synthetic_radiograph(side=512):
    """A grey frontal-chest-like picture: bright body, two dark lung fields, a heart shadow and
    a spine, with a little deterministic noise."""
    y, x = np.mgrid[0:side, 0:side] / side
    body = 0.75 - 0.5 * ((x - 0.5) ** 2 * 1.6 + (y - 0.55) ** 2 * 0.8)
    for cx in (0.32, 0.68):
        lung = ((x - cx) / 0.17) ** 2 + ((y - 0.48) / 0.3) ** 2 < 1.0
        body = np.where(lung, body * 0.35, body)
    heart = ((x - 0.55) / 0.13) ** 2 + ((y - 0.62) / 0.12) ** 2 < 1.0
    spine = np.abs(x - 0.5) < 0.035
    body = np.where(heart | spine, np.maximum(body, 0.7), body)
    noise = np.random.default_rng(2309).normal(0.0, 0.02, body.shape)
    return np.clip((body + noise) * 255.0, 0, 255).astype(np.uint8)


def write_pgm(path, pixels):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (pixels.shape[1], pixels.shape[0]))
        f.write(pixels.tobytes())


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "r2gen_convert.py"),
                    "--swin", os.path.join(TINY, "swin"),
                    "--checkpoint", os.path.join(TINY, "checkpoint-shallow.pth"),
                    "--llama", os.path.join(TINY, "llama"),
                    "--out", os.path.join(out_dir, "demo-model.gguf")], check=True)
    write_pgm(os.path.join(out_dir, "demo-xray.pgm"), synthetic_radiograph())


if __name__ == "__main__":
    main()
