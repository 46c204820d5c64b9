#!/usr/bin/env python3
"""PyTorch side of the Swin encoder benchmark: the same Swin-base shape as bench/bench_swin.c
(embed 128, depths 2/2/18/2, heads 4/8/16/32, window 7, patch 4, 224x224 input, one view, random
weights), written in plain torch with HF SwinModel's forward (transformers is not installed):
separate query/key/value Linears, relative position bias, shifted windows with HF's -100 mask,
patch merging in HF's (row 0, col 0), (row 1, col 0), (row 0, col 1), (row 1, col 1) order, exact
GELU, final LayerNorm.

    swin_torch.py [--threads N] [--runs K]

Times one fp32 encode under torch.inference_mode() with 1 .. N threads (best of K after a warm-up)
and prints `pytorch_swin_ms_<threads> <ms>` lines, then one JSON object as the last line. Exits 0
with a "skipped" message when torch is not installed."""
import argparse
import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError:
    print("skipped: torch not installed")
    print(json.dumps({"pytorch_swin": "skipped: torch not installed"}))
    sys.exit(0)

EMBED, DEPTHS, HEADS, WINDOW, PATCH, IMAGE, MLP_RATIO = 128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 4, 224, 4


def relative_position_index(w):
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[:, :, 0] * (2 * w - 1) + rel[:, :, 1]


def shift_mask(side, w, shift):
    """HF get_attn_mask: tokens of one window from different bands of the rolled map get -100."""
    region = torch.zeros(side, side)
    bands = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    label = 0
    for ys in bands:
        for xs in bands:
            region[ys, xs] = label
            label += 1
    windows = partition(region[None, :, :, None], w).reshape(-1, w * w)
    diff = windows[:, None, :] - windows[:, :, None]
    return diff.ne(0).float() * -100.0


def partition(x, w):
    """(B, H, W, C) -> (B * windows, w, w, C)."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w, w, c)


def reverse(windows, w, h, wd):
    c = windows.shape[-1]
    x = windows.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


class Block(nn.Module):
    def __init__(self, dim, heads, side, shifted):
        super().__init__()
        self.heads, self.side = heads, side
        self.window = min(WINDOW, side)
        self.shift = self.window // 2 if shifted and side > WINDOW else 0
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(0.02 * torch.randn((2 * self.window - 1) ** 2, heads))
        self.register_buffer("index", relative_position_index(self.window).reshape(-1))
        self.register_buffer("mask", shift_mask(side, self.window, self.shift) if self.shift else None)
        self.fc1, self.fc2 = nn.Linear(dim, MLP_RATIO * dim), nn.Linear(MLP_RATIO * dim, dim)

    def attention(self, x):
        bw, t, c = x.shape
        hd = c // self.heads
        q = self.query(x).view(bw, t, self.heads, hd).transpose(1, 2)
        k = self.key(x).view(bw, t, self.heads, hd).transpose(1, 2)
        v = self.value(x).view(bw, t, self.heads, hd).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / hd ** 0.5
        bias = self.bias_table[self.index].view(t, t, self.heads).permute(2, 0, 1)
        scores = scores + bias[None]
        if self.mask is not None:
            n = self.mask.shape[0]
            scores = (scores.view(bw // n, n, self.heads, t, t) + self.mask[None, :, None]).view(-1, self.heads, t, t)
        context = scores.softmax(-1) @ v
        return self.out(context.transpose(1, 2).reshape(bw, t, c))

    def forward(self, x):
        b, n, c = x.shape
        h = self.norm1(x).view(b, self.side, self.side, c)
        if self.shift:
            h = torch.roll(h, (-self.shift, -self.shift), (1, 2))
        w = self.window
        attended = self.attention(partition(h, w).view(-1, w * w, c))
        h = reverse(attended.view(-1, w, w, c), w, self.side, self.side)
        if self.shift:
            h = torch.roll(h, (self.shift, self.shift), (1, 2))
        x = x + h.reshape(b, n, c)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Merge(nn.Module):
    def __init__(self, dim, side):
        super().__init__()
        self.side = side
        self.norm, self.reduction = nn.LayerNorm(4 * dim), nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        b, _, c = x.shape
        x = x.view(b, self.side, self.side, c)
        cells = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        return self.reduction(self.norm(torch.cat(cells, -1).view(b, -1, 4 * c)))


class Swin(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Conv2d(3, EMBED, PATCH, PATCH)
        self.patch_norm = nn.LayerNorm(EMBED)
        layers, dim, side = [], EMBED, IMAGE // PATCH
        for s, (depth, heads) in enumerate(zip(DEPTHS, HEADS)):
            layers += [Block(dim, heads, side, b % 2 == 1) for b in range(depth)]
            if s + 1 < len(DEPTHS):
                layers.append(Merge(dim, side))
                dim, side = 2 * dim, side // 2
        self.layers = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(dim)

    def forward(self, pixels):
        x = self.patch_norm(self.patch(pixels).flatten(2).transpose(1, 2))
        return self.norm(self.layers(x))


def best_ms(model, pixels, runs):
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        model(pixels)
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="measure 1 .. N threads")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per thread count")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Swin().eval()
    pixels = torch.randn(1, 3, IMAGE, IMAGE)
    results = {}
    with torch.inference_mode():
        for n in range(1, max(args.threads, 1) + 1):
            torch.set_num_threads(n)
            model(pixels)  # warm-up: allocator, oneDNN/MKL kernels
            results[n] = best_ms(model, pixels, max(args.runs, 1))
            print(f"pytorch_swin_ms_{n} {results[n]:.1f}", flush=True)
    print(json.dumps({"pytorch": torch.__version__, "pytorch_swin_ms": results}))


if __name__ == "__main__":
    main()
