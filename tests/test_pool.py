"""The image history pool (Shrivastava et al.): fill, then 50% swap; explicit, restorable RNG."""

import torch

from cyclegan.pool import ImagePool


def _img(v):
    return torch.full((1, 1, 2, 2), float(v))


def test_pool_returns_inputs_until_full_then_mixes_history():
    pool = ImagePool(3, seed=0)
    for v in range(3):
        assert pool.query(_img(v)).flatten()[0].item() == v
    outs = [pool.query(_img(100 + i)).flatten()[0].item() for i in range(200)]
    old = sum(o < 100 or o < 100 + i for i, o in enumerate(outs) if o != 100 + i)
    new = sum(o == 100 + i for i, o in enumerate(outs))
    assert 70 < new < 130 and old == 200 - new  # about half returned as given
    assert len(pool.images) == 3


def test_pool_size_zero_is_identity():
    pool = ImagePool(0)
    x = torch.randn(2, 3, 4, 4)
    assert pool.query(x) is x


def test_pool_batches_are_per_image():
    pool = ImagePool(2, seed=0)
    out = pool.query(torch.randn(5, 3, 4, 4))
    assert out.shape == (5, 3, 4, 4) and len(pool.images) == 2


def test_pool_state_round_trip_continues_identically():
    a = ImagePool(4, seed=7)
    for v in range(10):
        a.query(_img(v))
    b = ImagePool(4, seed=0)
    b.load_state_dict(a.state_dict())
    for v in range(10, 40):
        assert torch.equal(a.query(_img(v)), b.query(_img(v)))


def test_pool_answers_in_the_dtype_asked():
    """A bf16 run resumed in float32 holds bf16 fakes; they come back as float32, unchanged in value."""
    pool = ImagePool(1, seed=0)
    pool.query(torch.full((1, 1, 2, 2), 1 / 3).bfloat16())
    outs = [pool.query(torch.zeros(1, 1, 2, 2)) for _ in range(20)]
    assert all(o.dtype == torch.float32 for o in outs)
    stored = [o for o in outs if o.abs().sum() > 0]
    assert stored and torch.equal(stored[0], torch.full((1, 1, 2, 2), 1 / 3).bfloat16().float())


def test_pool_keeps_a_batch_of_one_without_copying():
    """Batch 1 (the paper's): stored and returned as the very tensors given (no copy), values unchanged."""
    pool = ImagePool(2, seed=0)
    given = [torch.full((1, 3, 4, 4), float(v)) for v in range(40)]
    outs = [pool.query(x) for x in given]
    assert outs[0].data_ptr() == given[0].data_ptr() and outs[1].data_ptr() == given[1].data_ptr()
    ptrs = {x.data_ptr(): v for v, x in enumerate(given)}
    assert all(im.data_ptr() in ptrs for im in pool.images)
    swapped = [(v, o) for v, o in enumerate(outs) if o.data_ptr() != given[v].data_ptr()]
    assert swapped  # history returned: a stored earlier tensor itself, with its value
    assert all(
        o.data_ptr() in ptrs and ptrs[o.data_ptr()] < v and o[0, 0, 0, 0].item() == ptrs[o.data_ptr()]
        for v, o in swapped
    )


def test_pool_copies_when_asked_or_for_larger_batches():
    pool = ImagePool(4, seed=0, copy=True)
    x = torch.ones(1, 3, 4, 4)
    pool.query(x)
    x.zero_()  # as CUDA graphs overwrite last step's outputs
    assert pool.images[0].sum() == 48
    pool = ImagePool(4, seed=0)
    x = torch.ones(2, 3, 4, 4)
    pool.query(x)
    x.zero_()
    assert all(im.sum() == 48 and im.untyped_storage().nbytes() == 48 * 4 for im in pool.images)
