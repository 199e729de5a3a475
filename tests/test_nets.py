"""Every registered network: shapes, stochastic passes in training, determinism in eval."""
from __future__ import annotations

import pytest
import torch

from stochreg.nets import NETS, build_net, set_stochastic_eval


@pytest.fixture(params=NETS.names())
def net(request):
    torch.manual_seed(0)
    return build_net(request.param, (1, 28, 28), 10)


def test_output_shape(net):
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_passes_differ_in_train_mode(net):
    x = torch.rand(4, 1, 28, 28)
    net.train()
    assert not torch.allclose(net(x), net(x))


def test_passes_agree_in_eval_mode(net):
    x = torch.rand(4, 1, 28, 28)
    net.eval()
    assert torch.equal(net(x), net(x))


def test_stochastic_eval_turns_perturbations_back_on(net):
    x = torch.rand(4, 1, 28, 28)
    net.eval()
    set_stochastic_eval(net, True)
    assert not torch.allclose(net(x), net(x))
    set_stochastic_eval(net, False)
    assert torch.equal(net(x), net(x))


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
