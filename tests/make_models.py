#!/usr/bin/env python3
"""Convert the r2gen-tiny fixture (tests/data/r2gen-tiny) into the GGUF files the end-to-end tests
load: r2gen-tiny-<flavour>-<type>.gguf (Swin + projector + LLaMA in one file) for every checkpoint
flavour, with the project's own converter. Files newer than their sources are kept."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
TINY = os.path.join(HERE, "data", "r2gen-tiny")
CONVERTER = os.path.join(SOURCE, "tools", "r2gen_convert.py")


def up_to_date(target, sources):
    if not os.path.exists(target):
        return False
    return all(os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def main():
    out_dir = sys.argv[1]
    types = sys.argv[2].split(",") if len(sys.argv) > 2 else ["f32"]
    os.makedirs(out_dir, exist_ok=True)
    for flavour in ("shallow", "delta", "deep"):
        checkpoint = os.path.join(TINY, f"checkpoint-{flavour}.pth")
        for weight_type in types:
            target = os.path.join(out_dir, f"r2gen-tiny-{flavour}-{weight_type}.gguf")
            if up_to_date(target, [checkpoint, CONVERTER]):
                continue
            subprocess.run([sys.executable, CONVERTER, "--swin", os.path.join(TINY, "swin"),
                            "--checkpoint", checkpoint, "--llama", os.path.join(TINY, "llama"),
                            "--type", weight_type, "--out", target], check=True)
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
