"""gkd's packed-bits dropout: right drop rate, right scaling, seeded, and plain F.dropout on small tensors."""
import torch
import torch.nn.functional as F

from gkd.nn.functional import FAST_MIN_ELEMENTS, dropout, keep_mask


def test_keep_rate_and_scaling():
    torch.manual_seed(0)
    for p in (0.1, 0.5, 0.6):
        m = keep_mask((1000, 2000), p)
        assert abs(float(m.float().mean()) - (1 - p)) < 2e-3
    x = torch.ones(1100, 1000, requires_grad=True)
    y = dropout(x, 0.5)
    assert set(y.unique().tolist()) == {0.0, 2.0} and abs(float(y.mean()) - 1.0) < 5e-3
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # gradient flows through kept entries only, with the same scale


def test_seeded_and_small_tensors_use_torch():
    torch.manual_seed(3)
    a = dropout(torch.ones(FAST_MIN_ELEMENTS), 0.3)
    torch.manual_seed(3)
    assert torch.equal(a, dropout(torch.ones(FAST_MIN_ELEMENTS), 0.3))
    x = torch.ones(100, 100)
    torch.manual_seed(1)
    small = dropout(x, 0.5)
    torch.manual_seed(1)
    assert torch.equal(small, F.dropout(x, 0.5, True))
    assert torch.equal(dropout(x, 0.5, training=False), x)
