"""The pieces of the training loop: sampling, schedules, ramp-up, and the one-pass step layout."""
from __future__ import annotations

import math

import pytest
import torch

from stochreg.config import TrainConfig, resolve_config
from stochreg.terms.schedule import unsupervised_weight
from stochreg.train.batches import CyclingSampler
from stochreg.train.schedule import learning_rate


def test_sampler_visits_every_index_once_per_pass():
    sampler = CyclingSampler(torch.arange(10, 20), batch=4, generator=torch.Generator().manual_seed(0))
    drawn = torch.cat([sampler.next() for _ in range(5)])  # 20 indices = two full passes
    assert sorted(drawn[:10].tolist()) == list(range(10, 20)) and sorted(drawn[10:].tolist()) == list(range(10, 20))


def test_sampler_batch_larger_than_the_set():
    sampler = CyclingSampler(torch.arange(3), batch=7, generator=torch.Generator().manual_seed(0))
    batch = sampler.next()
    assert len(batch) == 7 and set(batch.tolist()) == {0, 1, 2}


def test_cosine_schedule_starts_at_lr_and_ends_at_zero():
    cfg = TrainConfig(iters=100, lr=0.1, schedule="cosine")
    assert learning_rate(cfg, 0, 10) == pytest.approx(0.1)
    assert learning_rate(cfg, 50, 10) == pytest.approx(0.05)
    assert learning_rate(cfg, 100, 10) == pytest.approx(0.0, abs=1e-12)


def test_fixmatch_cosine_schedule_starts_at_lr_and_ends_at_a_fifth_of_it():
    cfg = TrainConfig(iters=160, lr=0.1, schedule="cosine-fixmatch")
    rates = [learning_rate(cfg, s, 10) for s in range(161)]
    assert rates[0] == pytest.approx(0.1)
    assert rates[80] == pytest.approx(0.1 * math.cos(7 * math.pi / 32))
    assert rates[160] == pytest.approx(0.1 * math.cos(7 * math.pi / 16)) == pytest.approx(0.0195, abs=1e-4)
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_paper_schedule_is_exponential_in_epochs():
    cfg = resolve_config("paper-mnist")   # 0.003 in SparseConvNet's update is 0.0015 in torch's
    assert learning_rate(cfg, 0, 6000) == pytest.approx(0.0015)
    assert learning_rate(cfg, 6000 * 100, 6000) == pytest.approx(0.0015 * math.exp(-1.0))


def test_warmup_is_linear():
    cfg = TrainConfig(iters=100, lr=0.1, warmup_iters=10)
    assert [round(learning_rate(cfg, s, 1), 6) for s in (0, 4, 9)] == [0.01, 0.05, 0.1]


def test_rampup_rises_from_near_zero_to_one():
    cfg = TrainConfig(rampup_iters=100)
    weights = [unsupervised_weight(cfg, s) for s in range(0, 120, 10)]
    assert weights[0] == pytest.approx(math.exp(-5)) and weights[-1] == 1.0
    assert all(a <= b for a, b in zip(weights, weights[1:]))
    assert unsupervised_weight(TrainConfig(rampup_iters=0), 0) == 1.0


def test_view_major_layout_puts_the_n_views_of_an_image_together():
    # The step repeats the unlabelled batch n times and reads the outputs back as (n, B, C):
    # row b of every view must come from image b.
    x = torch.arange(3.0).view(3, 1, 1, 1)
    views = x.repeat(4, 1, 1, 1)
    assert torch.equal(views.view(4, 3), torch.arange(3.0).expand(4, 3))


def test_keep_freed_memory_reports_success_on_glibc():
    import platform
    from stochreg.runtime.hostmem import keep_freed_memory
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert keep_freed_memory() is True


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_foreach_optimiser_gives_bitwise_the_same_weights_as_the_loop(optimizer):
    """make_optimizer uses the multi-tensor (foreach) update for speed; the recorded results
    stay valid only if it computes exactly what the per-parameter loop computes."""
    import torch.nn.functional as F
    from stochreg.train.schedule import make_optimizer
    from stochreg.nets import build_net
    cfg = resolve_config(overrides={"optimizer": optimizer})
    weights = []
    for foreach in (True, False):
        torch.manual_seed(0)
        model = build_net("compact-small", (1, 28, 28), 10).eval()
        initial = [p.detach().clone() for p in model.parameters()]
        opt = make_optimizer(cfg, model, foreach=foreach)
        gen = torch.Generator().manual_seed(1)
        x, y = torch.rand(8, 1, 28, 28, generator=gen), torch.randint(0, 10, (8,), generator=gen)
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    assert not any(torch.equal(a, b) for a, b in zip(weights[0], initial))  # the steps did move every weight


def test_the_machine_description_names_the_cpu_model(tmp_path, monkeypatch):
    """Two 2-core machines ran the benchmarks 2.3x apart in speed: the record must tell them apart."""
    from stochreg.runtime import machine as train

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
    assert train.cpu_model_name(cpuinfo) == "AMD EPYC 7B13"
    assert train.cpu_model_name(tmp_path / "missing") is None
    monkeypatch.setattr(train, "cpu_model_name", lambda: "AMD EPYC 7B13")
    monkeypatch.setattr(train, "cpu_features", lambda: [])
    assert " CPU (AMD EPYC 7B13), " in train.machine_description(torch.device("cpu"))


def test_the_machine_description_tells_cpu_kinds_of_one_model_name_apart(tmp_path, monkeypatch):
    """An AMD EPYC of the Zen 3 kind (AVX2) and one of the Zen 4 kind (AVX-512, bfloat16) share a model name."""
    from stochreg.runtime import machine as train

    zen3, zen4 = tmp_path / "zen3", tmp_path / "zen4"
    zen3.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n")
    zen4.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n")
    assert train.cpu_features(zen3) == ["avx2"]
    assert train.cpu_features(zen4) == ["avx2", "avx512f", "avx512_bf16"]
    assert train.cpu_features(tmp_path / "missing") == []
    monkeypatch.setattr(train, "cpu_model_name", lambda: "AMD EPYC")
    monkeypatch.setattr(train, "cpu_features", lambda: ["avx2"])
    assert " CPU (AMD EPYC; avx2), " in train.machine_description(torch.device("cpu"))
