"""Speed of the n-view training step against the network's own cost, measured side by side.

    python benchmarks/speed.py                  # every network, scaling in n and batch, variants
    python benchmarks/speed.py --quick          # seconds: a smoke run (the tests use it)
    python benchmarks/speed.py --nets compact --device cuda
    python benchmarks/speed.py --device cuda --inputs digits colour --peak-tflops 989   # on an H200

For each network at each input size it times, in interleaved rounds (a b c a b c ...) so that
load from other users of the machine hits all three alike:

- a: a bare supervised step (forward, cross-entropy, backward, optimiser step) on a batch of
  the same total image count (labelled + n x unlabelled), already on the device, in the memory
  layout training uses for that net: the network's own cost;
- b: stochreg's real TS+ME step (``Learner.step``: index the device-resident uint8 data, n
  views of each unlabelled image, random transformations, one forward pass, both losses,
  backward, optimiser step, EMA update);
- c: a naive version of the same step: n + 1 separate transformation calls and forward passes,
  TS summed over explicit pairs of passes, ME by its literal product formula.

It reports images per second (every view counts), the ratios b/a and b/c, the FLOPs of one
step (torch's FLOP counter) and the achieved TFLOP/s, peak memory on CUDA, how b and a scale
with n and with the batch, and optional variants (torch.compile, bfloat16 autocast, and
``sgd-loop``: the optimiser's per-parameter Python loop instead of the foreach kernels training
uses). Each value is the median over rounds of the per-step time. Results go to a JSON file and a
markdown table.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from stochreg.config import resolve_config
from stochreg.data import Dataset
from stochreg.data.images import images_to_float
from stochreg.train import Learner
from stochreg.train.schedule import make_optimizer
from stochreg.runtime.precision import forward_precision
from stochreg.nets import NETS, build_net, preferred_memory_format
from stochreg.runtime.devices import pick_device
from stochreg.runtime.machine import machine_description, source_commit
from stochreg.augment.transforms import TRANSFORMS

HERE = Path(__file__).resolve().parent
SHAPES = {"digits": (1, 28, 28), "colour": (3, 32, 32)}


def synthetic_dataset(shape: tuple[int, int, int], n_train: int = 4096) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train, *shape), dtype=torch.uint8, generator=gen)
    labels = torch.arange(n_train) % 10
    return Dataset("synthetic", images, labels, images[:100], labels[:100], 10, is_digits=shape[0] == 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bare:
    """a: forward, cross-entropy, backward, optimiser step on a fixed batch on the device."""

    def __init__(self, cfg, shape, device, total: int):
        model = build_net(cfg.net, shape, 10)
        layout = preferred_memory_format(model)  # the layout training uses for this net
        self.model = model.to(device, memory_format=layout)
        self.optimizer = make_optimizer(cfg, self.model)
        self.x = torch.rand(total, *shape, device=device).contiguous(memory_format=layout)
        self.y = torch.randint(0, 10, (total,), device=device)
        self.precision = cfg.precision

    def __call__(self, step: int) -> None:
        with forward_precision(self.x.device, self.precision):  # as the learner runs its forward passes
            logits = self.model(self.x)
        loss = F.cross_entropy(logits.float(), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


class Full:
    """b: stochreg's own training step."""

    def __init__(self, cfg, shape, device):
        self.learner = Learner(cfg, synthetic_dataset(shape), torch.arange(0, 1000), device)

    def __call__(self, step: int) -> None:
        self.learner.step(step)


def naive_losses(probs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """TS as a sum over explicit pairs of passes, ME by its literal product formula, per view."""
    n = len(probs)
    ts = sum(((probs[j] - probs[k]) ** 2).sum(1).mean() for j in range(n) for k in range(j + 1, n))
    me = 0
    for p in probs:
        terms = [p[:, k] * torch.prod(1 - torch.cat([p[:, :k], p[:, k + 1:]], 1), 1) for k in range(p.shape[1])]
        me = me - torch.stack(terms, 1).sum(1).mean()
    return ts, me / n


class Naive:
    """c: the same losses written the obvious way: separate passes, explicit pairs, literal ME."""

    def __init__(self, cfg, shape, device):
        self.cfg, self.device = cfg, device
        self.model = build_net(cfg.net, shape, 10).to(device)
        self.optimizer = make_optimizer(cfg, self.model)
        data = synthetic_dataset(shape)
        self.images, self.labels = data.train_images.to(device), data.train_labels.to(device)
        self.transform = TRANSFORMS.get(cfg.transform)
        self.gen = torch.Generator().manual_seed(0)

    def __call__(self, step: int) -> None:
        cfg = self.cfg
        idx_lb = torch.randint(0, len(self.images), (cfg.batch_labelled,), generator=self.gen).to(self.device)
        idx_ulb = torch.randint(0, len(self.images), (cfg.batch_unlabelled,), generator=self.gen).to(self.device)
        x_lb, x_ulb = images_to_float(self.images[idx_lb]), images_to_float(self.images[idx_ulb])
        loss = F.cross_entropy(self.model(self.transform(x_lb, self.gen)), self.labels[idx_lb])
        probs = [torch.softmax(self.model(self.transform(x_ulb, self.gen)), 1) for _ in range(cfg.views)]
        ts, me = naive_losses(probs)
        loss = loss + cfg.lambda_ts * ts + cfg.lambda_me * me
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def step_flops(cfg, shape, total: int) -> int:
    """FLOPs of one forward + backward pass of the network on ``total`` images (torch's counter)."""
    model = build_net(cfg.net, shape, 10)
    x = torch.rand(total, *shape)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(total, dtype=torch.long)).backward()
    return counter.get_total_flops()


def time_interleaved(runners: dict, device: torch.device, warmup: int, steps: int, rounds: int) -> dict:
    """Median seconds per step of each runner, measured in interleaved rounds; CUDA peak memory."""
    per_step = {name: [] for name in runners}
    peak = {}
    step = 0
    for name, run in runners.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(warmup):
            run(step)
            step += 1
        sync(device)
        if device.type == "cuda":
            peak[name] = torch.cuda.max_memory_allocated(device) / 2**20
    for _ in range(rounds):
        for name, run in runners.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(steps):
                run(step)
                step += 1
            sync(device)
            per_step[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(times) for name, times in per_step.items()}, peak


def measure(net: str, shape_name: str, device, views: int, batch_ulb: int, batch_lb: int, args,
            naive: bool = True, variant: str | None = None) -> dict:
    shape = SHAPES[shape_name]
    transform = "digits" if shape_name == "digits" else "crop-flip"
    # bf16: the learner's own --precision bf16 (forward passes only, as training runs them) and
    # the same autocast around the bare step's forward pass
    cfg = resolve_config(overrides={"net": net, "views": views, "batch_unlabelled": batch_ulb,
                                    "batch_labelled": batch_lb, "transform": transform, "method": "ts-me",
                                    "precision": "bf16" if variant == "bf16" else "fp32",
                                    # the paper's step as it was measured before the graph term joined the
                                    # default (it adds one cross-entropy over the views to the step)
                                    "lambda_graph": 0.0})
    total = batch_lb + views * batch_ulb
    torch.manual_seed(0)
    runners = {"a": Bare(cfg, shape, device, total), "b": Full(cfg, shape, device)}
    if naive:
        runners["c"] = Naive(cfg, shape, device)
    if variant == "compile":
        runners["a"].model = torch.compile(runners["a"].model)
        # the learner's step calls forward_model (the DDP wrapper under torchrun, else the model)
        runners["b"].learner.forward_model = torch.compile(runners["b"].learner.forward_model)
    elif variant == "sgd-loop":  # the optimiser's per-parameter Python loop, torch's CPU default
        for runner in (runners["a"], runners["b"].learner):
            runner.optimizer = make_optimizer(cfg, runner.model, foreach=False)
    seconds, peak = time_interleaved(runners, device, args.warmup, args.steps, args.rounds)
    flops = step_flops(cfg, shape, total)
    row = {"net": net, "input": shape_name, "shape": list(shape), "views": views, "batch_labelled": batch_lb,
           "batch_unlabelled": batch_ulb, "images_per_step": total, "variant": variant or "default",
           "flops_per_step": flops}
    for name, s in seconds.items():
        row[f"{name}_seconds_per_step"] = s
        row[f"{name}_images_per_second"] = total / s
        row[f"{name}_tflops"] = flops / s / 1e12
        if name in peak:
            row[f"{name}_peak_memory_mb"] = round(peak[name], 1)
    row["b_over_a"] = seconds["a"] / seconds["b"]
    if "c" in seconds:
        row["b_over_c"] = seconds["c"] / seconds["b"]
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return row


def write_markdown(report: dict, path: Path) -> None:
    lines = [f"# Speed of the training step ({report['machine']})", "",
             f"Machine: {report['machine']}. Command: `{report['command']}`. Commit {report['commit']}, "
             f"torch {report['torch']}, "
             f"{report['threads']} threads. Images per second count every view; b/a = network's own "
             "step time / full TS+ME step time (1.0 = the machinery is free).", "",
             "| net | input | n | batch (lb + n x ulb) | variant | a: bare img/s | b: TS+ME img/s | c: naive img/s "
             "| b/a | b/c | b TFLOP/s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        c = f"{r['c_images_per_second']:.0f}" if "c_images_per_second" in r else "-"
        bc = f"{r['b_over_c']:.2f}" if "b_over_c" in r else "-"
        lines.append(f"| {r['net']} | {r['input']} | {r['views']} | {r['batch_labelled']} + {r['views']} x "
                     f"{r['batch_unlabelled']} | {r['variant']} | {r['a_images_per_second']:.0f} | "
                     f"{r['b_images_per_second']:.0f} | {c} | {r['b_over_a']:.2f} | {bc} | {r['b_tflops']:.3f} |")
    path.write_text("\n".join(lines) + "\n")


CPU_NETS = ("compact", "compact-small", "lenet-bn", "fmp-mnist")
VARIANTS = ("compile", "bf16", "sgd-loop")
GPU_NETS = ("wrn-28-2", "fmp-cifar")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few steps of one small net (a smoke run)")
    parser.add_argument("--nets", nargs="+",
                        help="networks to measure (default: the digit nets on a CPU; on a GPU also wrn-28-2 and fmp-cifar)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the chip's peak TFLOP/s (for the precision used), to report achieved/peak")
    parser.add_argument("--inputs", nargs="+", choices=sorted(SHAPES), default=["digits"],
                        help="input sizes: digits (1x28x28), colour (3x32x32)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scaling-net", default="compact", help="net for the n and batch scaling rows")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS,
                        help="optional variants of the default net to measure: compile, bf16, sgd-loop "
                             "(the optimiser without foreach)")
    parser.add_argument("--out", default=str(HERE / "results" / "speed" / "speed.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if args.quick:
        args.warmup, args.steps, args.rounds = 1, 1, 2
        nets, scaling, variants = args.nets or ["compact-small"], [(2, 8)], ["sgd-loop"]
        batch_lb = 8
    else:
        # The CIFAR-scale nets (27M-parameter FMP, WRN) take hours per round on 2 CPU cores.
        default_nets = list(CPU_NETS) + (list(GPU_NETS) if device.type == "cuda" else [])
        nets, scaling, variants = args.nets or default_nets, [(2, 32), (8, 32), (4, 16), (4, 64)], args.variants
        batch_lb = 32
    rows = []
    for shape_name in args.inputs:
        for net in nets:
            rows.append(measure(net, shape_name, device, 4 if not args.quick else 2, 32 if not args.quick else 8,
                                batch_lb, args))
    scaling_net = args.scaling_net if not args.quick else nets[0]
    for views, batch_ulb in scaling:
        rows.append(measure(scaling_net, args.inputs[0], device, views, batch_ulb, batch_lb, args, naive=False))
    for variant in variants:
        rows.append(measure(scaling_net, args.inputs[0], device, 4, 32, batch_lb, args, naive=False, variant=variant))
    report = {"command": shlex.join(["python", "benchmarks/speed.py", *(argv if argv is not None else sys.argv[1:])]),
              "commit": source_commit(), "machine": machine_description(device), "device": str(device),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
              "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rows": rows,
              "peak_tflops": args.peak_tflops}
    if args.peak_tflops:
        for row in rows:
            row["b_fraction_of_peak"] = row["b_tflops"] / args.peak_tflops
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    write_markdown(report, out.with_suffix(".md"))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
