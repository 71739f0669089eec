"""softmax_last on both sides of its switch to torch.softmax at 16 classes: the same values and gradients."""
import pytest
import torch

from estimators.relaxed import softmax_last


@pytest.mark.parametrize("classes", [12, 15, 16, 20])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_last_matches_torch_softmax_around_the_switch(classes, dtype):
    x = (4 * torch.randn(40, 3, classes, dtype=dtype)).requires_grad_()
    weights = torch.randn(40, 3, classes, dtype=dtype)
    torch.testing.assert_close(softmax_last(x), torch.softmax(x, -1))
    ours = torch.autograd.grad((softmax_last(x) * weights).sum(), x)[0]
    theirs = torch.autograd.grad((torch.softmax(x, -1) * weights).sum(), x)[0]
    torch.testing.assert_close(ours, theirs)
