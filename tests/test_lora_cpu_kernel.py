"""The LoRA dropout CPU kernels (`swift_core.tuners.lora_cpu_kernel`): their mask, their numbers
against torch on the same mask, the fused layer that uses them, and the fallbacks around the build."""

from __future__ import annotations

import shutil

import pytest
import torch
from lora_block import Block, count_applies
from peft import LoraConfig, get_peft_model

from swift_core import native_build
from swift_core.train.fast_dropout import use_fast_dropout
from swift_core.tuners import lora_cpu_kernel
from swift_core.tuners.lora_fused import LoraLinearFunction, LoraLinearKernelFunction, use_fused_lora


@pytest.fixture(scope="module")
def lib():
    """The kernels as this machine builds them. A compiler here and no kernels is a failure, not a skip."""
    built = lora_cpu_kernel.load()
    if built is None and native_build.compiler() is None:
        pytest.skip("no C compiler on this machine")
    assert built is not None, (
        "a C compiler is here, yet the LoRA CPU kernel did not build (see its debug log)"
    )
    return built


def _mask(lib, rows: int, n: int, p: float, seed: int) -> torch.Tensor:
    x = torch.ones(rows, n)
    _, bits = lora_cpu_kernel.down(lib, x, torch.ones(1, n), seed, lora_cpu_kernel.mask_cut(p), 1.0)
    return lora_cpu_kernel.keep_mask(lib, bits, n)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5])
def test_the_mask_drops_p_of_the_elements_independently(lib, p):
    rows, n = 600, 301  # n odd: the vector part and the scalar tail
    keep = _mask(lib, rows, n, p, seed=7)
    rate = lora_cpu_kernel.mask_cut(p) / lora_cpu_kernel.LANES
    dropped = 1 - keep.double().mean().item()
    sigma = (rate * (1 - rate) / keep.numel()) ** 0.5
    assert abs(dropped - rate) < 5 * sigma
    # no structure along rows or columns: per-column and per-row rates stay near p
    assert (1 - keep.double().mean(0) - rate).abs().max() < 6 * (rate * (1 - rate) / rows) ** 0.5
    assert (1 - keep.double().mean(1) - rate).abs().max() < 6 * (rate * (1 - rate) / n) ** 0.5
    # neighbours, in a row and across rows, are uncorrelated
    k = keep.double() - keep.double().mean()
    for a, b in ((k[:, 1:], k[:, :-1]), (k[1:], k[:-1])):
        corr = (a * b).mean() / (a.std() * b.std())
        assert abs(corr) < 0.02


def test_the_mask_follows_the_seed(lib):
    one, same, other = _mask(lib, 50, 64, 0.3, 1), _mask(lib, 50, 64, 0.3, 1), _mask(lib, 50, 64, 0.3, 2)
    assert torch.equal(one, same)
    assert not torch.equal(one, other)
    assert not torch.equal(one[0], one[1])  # rows differ under one seed


@pytest.mark.parametrize("n,r", [(45, 1), (45, 5), (64, 8), (203, 12), (7, 3)])
def test_the_kernels_equal_torch_on_their_mask(lib, n, r):
    torch.manual_seed(0)
    rows, cut, seed = 37, lora_cpu_kernel.mask_cut(0.2), 99
    x, a, gz, gx0 = torch.randn(rows, n), torch.randn(r, n), torch.randn(rows, r), torch.randn(rows, n)
    scale = lora_cpu_kernel.keep_scale(cut)
    z, bits = lora_cpu_kernel.down(lib, x, a, seed, cut, scale)
    keep = lora_cpu_kernel.keep_mask(lib, bits, n)
    assert 0 < keep.sum() < keep.numel()
    masked = torch.where(keep, x, 0.0)
    torch.testing.assert_close(z, masked @ a.t() * scale, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        lora_cpu_kernel.grad_a(lib, gz, x, bits), gz.t() @ masked, rtol=1e-5, atol=1e-5
    )
    gx = gx0.clone()
    lora_cpu_kernel.grad_x_add_(lib, gx, gz, a, bits)
    torch.testing.assert_close(gx, gx0 + torch.where(keep, gz @ a, 0.0), rtol=1e-5, atol=1e-5)


def test_the_results_do_not_depend_on_the_thread_count(lib):
    torch.manual_seed(0)
    rows, n, r, cut = 301, 130, 8, lora_cpu_kernel.mask_cut(0.1)
    x, a, gz, gx0 = torch.randn(rows, n), torch.randn(r, n), torch.randn(rows, r), torch.randn(rows, n)
    before = torch.get_num_threads()
    outs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            z, bits = lora_cpu_kernel.down(lib, x, a, 5, cut, 1.25)
            gx = gx0.clone()
            lora_cpu_kernel.grad_x_add_(lib, gx, gz, a, bits)
            outs.append((z, bits, lora_cpu_kernel.grad_a(lib, gz, x, bits), gx))
    finally:
        torch.set_num_threads(before)
    for one, two in zip(*outs):
        assert torch.equal(one, two)


def test_the_kernel_layer_equals_the_torch_layer_on_the_same_mask(lib, monkeypatch):
    """Every gradient autograd asks for, the trainable base weight and bias included."""
    torch.manual_seed(0)
    n, out, r, cut, seed = 24, 18, 4, lora_cpu_kernel.mask_cut(0.3), 1234
    x = torch.randn(2, 5, n)
    params = [torch.randn(out, n), torch.randn(out), torch.randn(r, n), torch.randn(out, r)]
    _, bits = lora_cpu_kernel.down(lib, x.reshape(-1, n), params[2], seed, cut, 1.0)
    drop = ~lora_cpu_kernel.keep_mask(lib, bits, n)

    def run(fn, *tail):
        xs = x.clone().requires_grad_()
        ps = [p.clone().requires_grad_() for p in params]
        y = fn.apply(xs, ps[0], ps[1], ps[2], ps[3], 2.0, *tail)
        (y * torch.linspace(-1, 1, out)).sum().backward()
        return [y.detach(), xs.grad, *(p.grad for p in ps)]

    got = run(LoraLinearKernelFunction, lib, seed, cut)
    want = run(LoraLinearFunction, drop, lora_cpu_kernel.keep_scale(cut))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def _fused_model(dropout: float = 0.2):
    torch.manual_seed(0)
    cfg = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["q", "o"], init_lora_weights=False
    )
    model = get_peft_model(Block(), cfg)
    use_fast_dropout(model)  # as `swift sft` does
    assert use_fused_lora(model) == 2
    return model.train()


def test_the_fused_layer_uses_the_kernels_reproducibly_under_a_seed(lib, monkeypatch):
    model = _fused_model()
    calls = count_applies(monkeypatch, LoraLinearKernelFunction)
    x = torch.randn(3, 5, 16)

    def out(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return model(x).detach()

    first = out(1)
    assert calls[0] == 2
    assert torch.equal(out(1), first)  # the seed comes from torch's generator
    assert not torch.equal(out(2), first)
    model.eval()  # no dropout: not the kernels
    with torch.no_grad():
        model(x)
    assert calls[0] == 6


def test_non_fp32_and_switched_off_keep_the_torch_path(lib, monkeypatch):
    model = _fused_model()
    kernel_calls = count_applies(monkeypatch, LoraLinearKernelFunction)
    torch_calls = count_applies(monkeypatch, LoraLinearFunction)
    with torch.no_grad():
        model.to(torch.float64)(torch.randn(2, 3, 16, dtype=torch.float64))
    assert (kernel_calls[0], torch_calls[0]) == (0, 2)  # the kernels are fp32 only
    monkeypatch.setenv("SWIFT_CPU_KERNELS", "0")
    lora_cpu_kernel.load.cache_clear()
    try:
        assert lora_cpu_kernel.load() is None
        _fused_model()(torch.randn(2, 3, 16)).sum().backward()
        assert (kernel_calls[0], torch_calls[0]) == (0, 4)
    finally:
        monkeypatch.delenv("SWIFT_CPU_KERNELS")
        lora_cpu_kernel.load.cache_clear()


def test_a_failing_compiler_leaves_nothing_and_loads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SWIFT_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", shutil.which("false") or "false")
    lora_cpu_kernel.load.cache_clear()
    try:
        assert lora_cpu_kernel.load() is None
    finally:
        lora_cpu_kernel.load.cache_clear()
    assert list((tmp_path / "kernels").iterdir()) == []  # no half-written library, no temporary


def test_the_built_library_is_cached_and_reused(tmp_path, monkeypatch, lib):
    monkeypatch.setenv("SWIFT_CACHE", str(tmp_path))
    lora_cpu_kernel.load.cache_clear()
    try:
        assert lora_cpu_kernel.load() is not None
        built = list((tmp_path / "kernels").iterdir())
        assert len(built) == 1 and built[0].suffix == ".so"
        lora_cpu_kernel.load.cache_clear()
        monkeypatch.setattr(native_build, "build", lambda *a: pytest.fail("built again"))
        assert lora_cpu_kernel.load() is not None
    finally:
        lora_cpu_kernel.load.cache_clear()


def test_an_unwritable_cache_loads_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("SWIFT_CACHE", str(blocker))
    lora_cpu_kernel.load.cache_clear()
    try:
        assert lora_cpu_kernel.load() is None
    finally:
        lora_cpu_kernel.load.cache_clear()


def test_the_layer_survives_the_profiler_recording_shapes(lib):
    """The profiler casts an autograd Function's arguments to C++ types: the seed must fit int64."""
    model = _fused_model()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True):
        for seed in range(8):  # seeds of either sign
            torch.manual_seed(seed)
            model(torch.randn(2, 3, 16)).sum().backward()
