"""The training functions' torch settings hold for the run only: thread count and global random stream come back."""
import torch

from accel.plugins.training import torch_scope


def test_scope_restores_threads_and_random_stream():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    before = torch.get_num_threads()
    inside = 2 if before != 2 else 1
    with torch_scope(inside, seed=7) as t:
        assert torch.get_num_threads() == inside
        first = t.rand(3)
    assert torch.get_num_threads() == before
    # the caller's stream continues as if the block never ran
    assert torch.equal(torch.rand(3), expected_next)
    # and the block's stream is the seed's, every time
    with torch_scope(inside, seed=7):
        assert torch.equal(torch.rand(3), first)
    torch.manual_seed(7)
    assert torch.equal(torch.rand(3), first)


def test_scope_restores_threads_after_an_error():
    before = torch.get_num_threads()
    try:
        with torch_scope(before + 1):
            raise RuntimeError("training failed")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before
