"""Accuracy reference for the mitochondria proof: the same U-Net, data, augmentation and
optimiser as `emstudio train`, trained in PyTorch, then scored like `emstudio evaluate`.

It answers one question: is a score from EM Studio's trainer limited by the engine (a bug would
show as PyTorch scoring clearly higher on the same protocol) or by the protocol itself (few
training slices, small network, short run)? Everything mirrors crates/nets/src/train.rs and
augment.rs: random crops from the training slices, flips and a transpose, a 4×4-grid elastic
warp, brightness/contrast/gamma, blur, noise, missing band and misaligned rows, input
normalised by the training slices' mean and standard deviation, sigmoid cross-entropy, Adam
(eps 1e-8) with a cosine decay to 1 %, batch-norm running statistics for inference, whole
slices predicted at once (768 × 1024 fits a depth-4 U-Net), optional averaging over the eight
orientations (`--views 8`), threshold 0.5, foreground IoU and Dice over all scored pixels.

    python train_mito_torch.py --data ../shared/data/epfl-hippocampus-mito \
        --train 0-4 --score 20-26 --steps 3000 --views 8 --json out.json
"""

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch.nn import functional as F

import torch_nets


def slices(spec):
    """'0-4' or '0,6,10' → list of ints."""
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def load(folder, z):
    image = np.asarray(Image.open(folder / "image" / f"{z:04d}.png").convert("L"), np.float32) / 255.0
    label = (np.asarray(Image.open(folder / "label" / f"{z:04d}.png")) > 0).astype(np.float32)
    return image, label


def elastic(image, label, amplitude, rng):
    h, w = image.shape
    g = 4
    grid = rng.standard_normal((g, g, 2)).astype(np.float32) * amplitude
    gy = np.arange(h, dtype=np.float32) * (g - 1) / (max(h, 2) - 1)
    gx = np.arange(w, dtype=np.float32) * (g - 1) / (max(w, 2) - 1)
    y0 = np.floor(gy).astype(int)
    x0 = np.floor(gx).astype(int)
    y1 = np.minimum(y0 + 1, g - 1)
    x1 = np.minimum(x0 + 1, g - 1)
    fy = (gy - y0)[:, None, None]
    fx = (gx - x0)[None, :, None]
    top = grid[y0][:, x0] + (grid[y0][:, x1] - grid[y0][:, x0]) * fx
    bottom = grid[y1][:, x0] + (grid[y1][:, x1] - grid[y1][:, x0]) * fx
    d = top + (bottom - top) * fy
    sy = np.clip(np.arange(h)[:, None] + d[..., 0], 0, h - 1)
    sx = np.clip(np.arange(w)[None, :] + d[..., 1], 0, w - 1)
    iy0 = np.floor(sy).astype(int)
    ix0 = np.floor(sx).astype(int)
    iy1 = np.minimum(iy0 + 1, h - 1)
    ix1 = np.minimum(ix0 + 1, w - 1)
    fy = sy - iy0
    fx = sx - ix0
    t = image[iy0, ix0] + (image[iy0, ix1] - image[iy0, ix0]) * fx
    b = image[iy1, ix0] + (image[iy1, ix1] - image[iy1, ix0]) * fx
    warped = t + (b - t) * fy
    near = label[np.rint(sy).astype(int), np.rint(sx).astype(int)]
    return warped.astype(np.float32), near


def augment(image, label, rng):
    """augment.rs with its default strengths."""
    if rng.random() < 0.5:
        image, label = image[::-1], label[::-1]
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if rng.random() < 0.5:
        image, label = image.T, label.T
    image, label = elastic(np.ascontiguousarray(image), np.ascontiguousarray(label), 4.0, rng)
    c = 1.0 + rng.uniform(-1, 1) * 0.15
    b = rng.uniform(-1, 1) * 0.1
    m = image.mean()
    image = np.clip((image - m) * c + m + b, 0, 1)
    image = np.power(np.maximum(image, 0), 1.2 ** rng.uniform(-1, 1))
    if rng.random() < 0.2:
        image = gaussian_filter(image, rng.uniform(0.5, 1.5))
    image = image + rng.standard_normal(image.shape) * rng.uniform(0, 0.03)
    h, w = image.shape
    if rng.random() < 0.05:
        band = rng.integers(1, h // 4 + 1)
        start = rng.integers(0, h - band + 1)
        image[start : start + band] = image.mean()
    if rng.random() < 0.05:
        cut = rng.integers(1, h)
        shift = rng.integers(1, w // 8 + 1) * (1 if rng.random() < 0.5 else -1)
        src = np.clip(np.arange(w) - shift, 0, w - 1)
        image[cut:] = image[cut:, src]
        label[cut:] = label[cut:, src]
    return image.astype(np.float32), label.astype(np.float32)


def predict(net, image, mean, std, views):
    x = torch.from_numpy((image - mean) / std)[None, None].to(next(net.parameters()).device)
    total = torch.zeros_like(x)
    with torch.no_grad():
        for v in range(views):
            t = x.transpose(2, 3) if v & 4 else x
            dims = [d for d, bit in ((2, 1), (3, 2)) if v & bit]
            t = torch.flip(t, dims) if dims else t
            p = torch.sigmoid(net(t))
            p = torch.flip(p, dims) if dims else p
            total += p.transpose(2, 3) if v & 4 else p
    return (total / views)[0, 0].cpu().numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--train", default="0-4")
    ap.add_argument("--score", default="20-26")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base-width", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--loss", choices=["bce", "dice"], default="bce", help="sigmoid cross-entropy, or soft Dice as in loss.rs")
    ap.add_argument("--device", default="cpu", help="torch device: cpu, or cuda on a GPU machine")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--save", type=Path, help="write the trained state_dict (safetensors) for `emstudio import`")
    ap.add_argument("--score-train", action="store_true", help="also score the training slices")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train = [load(args.data, z) for z in slices(args.train)]
    pixels = np.concatenate([i.ravel() for i, _ in train])
    mean, std = float(pixels.mean()), float(pixels.std())
    device = torch.device(args.device)
    net = torch_nets.build({"arch": "unet", "depth": args.depth, "base_width": args.base_width}, 1, 1).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-8)
    p = args.patch
    start = time.time()
    first = last = None
    for step in range(args.steps):
        xs, ys = [], []
        for _ in range(args.batch):
            image, label = train[rng.integers(len(train))]
            h, w = image.shape
            y, x = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
            a, b = augment(image[y : y + p, x : x + p], label[y : y + p, x : x + p].copy(), rng)
            xs.append((a - mean) / std)
            ys.append(b)
        x = torch.from_numpy(np.stack(xs))[:, None].to(device)
        t = torch.from_numpy(np.stack(ys))[:, None].to(device)
        t_frac = step / args.steps
        for g in opt.param_groups:
            g["lr"] = args.lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t_frac)))
        if args.loss == "dice":
            p_fg = torch.sigmoid(net(x))
            loss = 1 - (2 * (p_fg * t).sum() + 1) / (p_fg.sum() + t.sum() + 1)
        else:
            loss = F.binary_cross_entropy_with_logits(net(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
        if (step + 1) % 250 == 0:
            print(f"step {step + 1}: loss {last:.4f} ({time.time() - start:.0f} s)", flush=True)
    train_s = time.time() - start

    net.eval()
    if args.save:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(args.save))
    inter = union = fg_pred = fg_gt = 0
    per_slice = {}
    for z in slices(args.score):
        image, label = load(args.data, z)
        pred = predict(net, image, mean, std, args.views) > 0.5
        gt = label > 0
        i, u = int((pred & gt).sum()), int((pred | gt).sum())
        per_slice[z] = i / max(u, 1)
        inter, union = inter + i, union + u
        fg_pred, fg_gt = fg_pred + int(pred.sum()), fg_gt + int(gt.sum())
    fit = {}
    if args.score_train:
        for z in slices(args.train):
            image, label = load(args.data, z)
            pred = predict(net, image, mean, std, 1) > 0.5
            gt = label > 0
            fit[z] = int((pred & gt).sum()) / max(int((pred | gt).sum()), 1)
    result = {
        "steps": args.steps,
        "train_seconds": round(train_s, 1),
        "first_loss": first,
        "last_loss": last,
        "iou": inter / max(union, 1),
        "dice": 2 * inter / max(fg_pred + fg_gt, 1),
        "per_slice_iou": per_slice,
        "training_slice_iou_1_view": fit,
        "torch": torch.__version__,
        "normalization": {"mean": mean, "std": std},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
