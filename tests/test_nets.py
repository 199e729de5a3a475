"""Every registered network: shapes, stochastic passes in training, determinism in eval."""
from __future__ import annotations

import pytest
import torch

from stochreg.nets import NETS, build_net, set_stochastic_eval


# Nets whose only randomness is the input transformation (no dropout or FMP): the reference
# WRN-28-2, torchvision's ResNet-18 and timm's EfficientNet-Lite are kept as their authors defined them.
DETERMINISTIC = {"wrn-28-2", "resnet18", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"}


@pytest.fixture(params=NETS.names())
def net(request):
    torch.manual_seed(0)
    return build_net(request.param, (1, 28, 28), 10)


@pytest.fixture(params=sorted(set(NETS.names()) - DETERMINISTIC))
def stochastic_net(request):
    torch.manual_seed(0)
    return build_net(request.param, (1, 28, 28), 10)


def test_output_shape(net):
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_passes_differ_in_train_mode(stochastic_net):
    x = torch.rand(4, 1, 28, 28)
    stochastic_net.train()
    assert not torch.allclose(stochastic_net(x), stochastic_net(x))


def test_passes_agree_in_eval_mode(net):
    x = torch.rand(4, 1, 28, 28)
    net.eval()
    assert torch.equal(net(x), net(x))


def test_stochastic_eval_turns_perturbations_back_on(stochastic_net):
    x = torch.rand(4, 1, 28, 28)
    stochastic_net.eval()
    set_stochastic_eval(stochastic_net, True)
    assert not torch.allclose(stochastic_net(x), stochastic_net(x))
    set_stochastic_eval(stochastic_net, False)
    assert torch.equal(stochastic_net(x), stochastic_net(x))


def test_gradients_reach_every_parameter(net):
    net.train()
    net(torch.rand(4, 1, 28, 28)).logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_fmp_net_uses_fractional_pooling_with_ratio_sqrt2():
    from stochreg.nets import FractionalMaxPool
    pools = [m for m in build_net("fmp-mnist", (1, 28, 28), 10).modules() if isinstance(m, FractionalMaxPool)]
    assert len(pools) == 6
    sizes = [p.output_size for p in pools]
    # each layer: a 2x2 conv takes one pixel off, then the pooling divides by about sqrt(2)
    assert sizes[-1] == 2 and all(1.3 < (a - 1) / b < 1.6 for a, b in zip(sizes, sizes[1:]))


@pytest.mark.parametrize("name, shape, message", [
    ("compact", (1, 1, 1), "network compact cannot take 1x1x1 images"),
    ("fmp-mnist", (1, 64, 64), "takes images up to 38px"),
])
def test_images_a_network_cannot_take_are_a_clear_error(name, shape, message):
    from stochreg.errors import UsageError
    from stochreg.nets import build_net
    with pytest.raises(UsageError, match=message):
        build_net(name, shape, 10)


def test_fmp_nets_train_in_the_plain_layout_the_others_channels_last():
    from stochreg.nets import build_net, preferred_memory_format
    assert preferred_memory_format(build_net("fmp-mnist", (1, 28, 28), 10)) == torch.contiguous_format
    assert preferred_memory_format(build_net("compact", (1, 28, 28), 10)) == torch.channels_last


def test_paper_nets_follow_the_authors_shapes():
    from stochreg.nets import FMPNet
    cifar = build_net("fmp-cifar", (3, 32, 32), 10)
    assert cifar.input_size >= 32 + 2 * 16  # the image and its 16 px canvas fit the field
    convs = [m for m in cifar.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:12]] == [96 * k for k in range(1, 13)]
    svhn, norb = build_net("fmp-small", (3, 32, 32), 10), build_net("fmp-small", (2, 96, 96), 5)
    assert isinstance(svhn, FMPNet) and svhn.input_size >= 64 and norb.input_size >= 128
    wrn = build_net("wrn-28-2", (3, 32, 32), 10)
    assert 1_400_000 < sum(p.numel() for p in wrn.parameters()) < 1_500_000


def test_an_input_larger_than_the_fmp_field_is_refused_not_cropped():
    from stochreg.errors import UsageError
    net = build_net("fmp-mnist", (1, 28, 28), 10)
    with pytest.raises(UsageError, match="takes inputs up to 38px, got 60x60"):
        net(torch.zeros(1, 1, 60, 60))


def test_fractional_pooling_draws_one_grid_per_image_shared_by_its_channels():
    from stochreg.nets import FractionalMaxPool
    pool = FractionalMaxPool(7).train()
    image = torch.randn(8, 1, 11, 11)
    out = pool(image.expand(8, 16, 11, 11))   # 16 identical channels per image
    assert torch.equal(out, out[:, :1].expand_as(out))                        # one grid for all channels
    assert not torch.equal(pool(image.expand(8, 16, 11, 11)), out)            # a new draw each pass
    pool.eval()
    assert torch.equal(pool(image), pool(image))                              # fixed grid in eval mode


def dropout_rates(model: torch.nn.Module) -> list[float]:
    return [m.p for m in model.modules() if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d))]


def test_the_dropout_setting_replaces_the_compact_nets_rate():
    assert dropout_rates(build_net("compact-medium", (1, 28, 28), 10)) == [0.125, 0.125, 0.25]
    assert dropout_rates(build_net("compact-medium", (1, 28, 28), 10, dropout=0.4)) == [0.2, 0.2, 0.4]
    net = build_net("compact-small", (1, 28, 28), 10, dropout=0.0).train()
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(net(x), net(x))  # no dropout left: training-mode passes agree (batch norm is per batch)


def test_a_dropout_rate_for_a_net_without_one_is_a_clear_error():
    from stochreg.config import resolve_config
    from stochreg.errors import UsageError
    with pytest.raises(UsageError, match="wrn-28-2 has no dropout rate to set; --dropout applies to compact"):
        resolve_config(overrides={"net": "wrn-28-2", "dropout": 0.1})
    with pytest.raises(UsageError, match=r"dropout must be in \[0, 1\), got 1.5"):
        resolve_config(overrides={"dropout": 1.5})


@pytest.mark.end_to_end
def test_a_run_with_its_own_dropout_rate_loads_with_it(tiny_data_dir, tmp_path):
    import stochreg
    from stochreg.cli import main
    run = tmp_path / "run"
    assert main(["train", "--data-dir", str(tiny_data_dir), "--out", str(run), "--labels", "20", "--iters", "2",
                 "--batch-labelled", "10", "--batch-unlabelled", "8", "--views", "3", "--eval-every", "0",
                 "--eval-batch", "50", "--no-progress", "--net", "compact-small", "--dropout", "0.1"]) == 0
    assert dropout_rates(stochreg.load(run).model) == [0.05, 0.05, 0.1]
