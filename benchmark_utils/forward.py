"""Forward problems (denoising, deblurring, inpainting) over deepinv physics.

y_i = A_i x_i + noise_sigma n_i (``docs/maths.md`` (1.1)), the noise drawn
once from a seed and frozen. :func:`make_forward` builds the
:class:`ForwardOperator` of one task for one set of n images of one shape:
``deepinv.physics`` ``Denoising``, ``BlurFFT`` (circular Gaussian blur) or
``Inpainting`` (one random mask per image), plus what the lower-level solvers
need and deepinv does not give exactly: ``norm_sq = ||A||^2``, ``lambda_min
= lambda_min(A^T A)``, a one-FFT ``A^T A`` and an index-aware ``A^T A`` for
mini-batches, and frozen, device-independent noise. The kernel, the spectrum
and the noise are computed here in float64 because deepinv's give other bits
(``docs/data.md``, "Operators").
"""

import copy

import numpy as np
import torch

from .validation import check_choice, check_dtype, check_int, check_real, fail

TASKS = ("denoising", "deblurring", "inpainting")

#: largest ``noise_sigma``: the noise may not exceed the [0, 1] pixel range
NOISE_SIGMA_MAX = 1.0
#: ``blur_sigma`` must exceed this (below, the blur is the identity in float64)
BLUR_SIGMA_MIN = 0.1
#: largest ``mask_ratio`` (fraction of the pixels of an image removed)
MASK_RATIO_MAX = 0.95


def gaussian_kernel(kernel_size, blur_sigma):
    """Normalised float64 (k, k) kernel exp(-(i^2 + j^2) / (2 blur_sigma^2)),
    i, j in -(k // 2) .. k // 2 (deepinv's ``gaussian_blur`` up to one ulp)."""
    radius = kernel_size // 2
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2.0 * blur_sigma**2))
    kernel = g[:, None] * g[None, :]
    return kernel / kernel.sum()


def blur_spectrum_sq(kernel, height, width):
    """|DFT|^2 of ``kernel`` zero-padded to height x width (float64): the
    eigenvalues of A^T A for the circular convolution A."""
    k = kernel.to(dtype=torch.float64, device="cpu")
    return torch.fft.fft2(k, s=(height, width)).abs() ** 2


def _physics(name, image_shape, noise_sigma, kernel, mask, device, dtype):
    """The deepinv operator of a task, its buffers built in ``dtype``."""
    from deepinv.physics import BlurFFT, Denoising, GaussianNoise, Inpainting

    noise = GaussianNoise(sigma=noise_sigma)
    if name == "denoising":
        return Denoising(noise_model=noise, device=device)
    if name == "deblurring":
        return BlurFFT(
            img_size=image_shape,
            filter=kernel.to(dtype=dtype)[None, None],
            device=device,
            noise_model=noise,
        )
    return Inpainting(
        img_size=image_shape,
        mask=mask.to(dtype=dtype)[:, None],
        device=device,
        noise_model=noise,
    )


class ForwardOperator:
    """Linear measurement operator of a set of images, with Gaussian noise.

    Built by :func:`make_forward`; never modified (:meth:`to` returns a new
    one). ``image_shape`` is (C, H, W); ``kernel`` the float64 (k, k) blur
    kernel (deblurring), ``masks`` the float64 (n, H, W) pixel masks, one per
    image of the set, 1 = kept (inpainting), else None. Operators take a
    batch (B, C, H, W) of images of the set: the whole set in order when
    ``idx`` is None, else the images ``idx``.
    """

    def __init__(
        self,
        name,
        *,
        image_shape,
        noise_sigma,
        norm_sq,
        lambda_min,
        kernel=None,
        masks=None,
        device="cpu",
        dtype=torch.float32,
        physics=None,
    ):
        self.name = name
        self.image_shape = tuple(image_shape)
        self.noise_sigma = float(noise_sigma)
        self.norm_sq = float(norm_sq)
        self.lambda_min = float(lambda_min)
        self.device = torch.device(device)
        self.dtype = dtype
        self._kernel, self._masks = kernel, masks
        if physics is None:
            physics = _physics(
                name, self.image_shape, self.noise_sigma, kernel, masks, device, dtype
            )
        self.physics = physics
        self.kernel = None if kernel is None else kernel.to(self.device, dtype)
        #: (n, 1, H, W) masks on the device, or None
        self.mask = None if masks is None else masks[:, None].to(self.device, dtype)
        # A^T A of the circular blur is diagonal in Fourier: |DFT(kernel)|^2
        self._ata_spectrum = None
        if kernel is not None:
            h, w = self.image_shape[-2:]
            spec = blur_spectrum_sq(kernel, h, w)[:, : w // 2 + 1]
            self._ata_spectrum = spec.to(self.device, dtype)

    @property
    def is_identity(self):
        """True when A = I (denoising): callers skip A^T A."""
        return self.name == "denoising"

    def __repr__(self):
        n = "" if self.mask is None else f", n_masks={self.mask.shape[0]}"
        return (
            f"ForwardOperator(name={self.name!r}, image_shape={self.image_shape}, "
            f"noise_sigma={self.noise_sigma:g}, norm_sq={self.norm_sq:g}, "
            f"lambda_min={self.lambda_min:g}{n}, device={self.device}, "
            f"dtype={self.dtype})"
        )

    def _check_input(self, x, name, idx):
        """Refuse a wrong shape: deepinv would broadcast it or fail obscurely."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4:
            raise ValueError(
                f"{name} must be a tensor of shape (B, C, H, W), got "
                f"{getattr(x, 'shape', type(x).__name__)}"
            )
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{name} must have shape (B, {', '.join(map(str, self.image_shape))})"
                f" for this operator, got {tuple(x.shape)}"
            )
        n = None if self.mask is None else self.mask.shape[0]
        if idx is None and n is not None and x.shape[0] != n:
            raise ValueError(
                f"{name} holds {x.shape[0]} images; this operator has one mask "
                f"per image of a set of {n}: pass all of them or their idx"
            )
        if idx is not None and idx.numel() != x.shape[0]:
            raise ValueError(f"idx has {idx.numel()} entries for {x.shape[0]} images")

    def _masked(self, x, idx):
        """diag(mask_i) x_i (inpainting); x itself for the other tasks."""
        if self.mask is None:
            return x.clone() if self.is_identity else self.physics.A(x)
        return x * (self.mask if idx is None else self.mask[idx])

    def A(self, x, idx=None):
        """A x for images ``x`` (B, C, H, W) of the set (``idx``: which)."""
        self._check_input(x, "x", idx)
        return self.physics.A(x) if idx is None else self._masked(x, idx)

    def A_adjoint(self, y, idx=None):
        """A^T y for measurements ``y`` (B, C, H, W)."""
        self._check_input(y, "y", idx)
        return self.physics.A_adjoint(y) if idx is None else self._masked(y, idx)

    def AtA(self, x, idx=None):
        """A^T A x for images ``x`` (B, C, H, W) (the hot path's data term)."""
        self._check_input(x, "x", idx)
        if self._ata_spectrum is not None:
            h, w = self.image_shape[-2:]
            return torch.fft.irfft2(torch.fft.rfft2(x) * self._ata_spectrum, s=(h, w))
        if self.mask is not None:
            return self._masked(x, idx)
        return x.clone()

    def measure(self, x, seed):
        """Measurements A x + noise_sigma n of the whole set ``x``, frozen.

        n is drawn in float64 on the CPU from a local generator seeded with
        ``seed`` (the same noise on every device and dtype; the global RNG is
        untouched), image b's noise from its position b.
        """
        seed = check_int(seed, "seed", low=0)
        self._check_input(x, "x", None)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            return self.A(x) + self.noise_sigma * noise

    def to(self, device=None, dtype=None):
        """The operator on another device and/or dtype (``self`` unchanged).

        A dtype change rebuilds the physics from the float64 kernel or masks
        (``nn.Module.to(dtype)`` would drop the imaginary part of BlurFFT's
        phase buffer).
        """
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else check_dtype(dtype)
        if device == self.device and dtype == self.dtype:
            return self
        physics = None
        if dtype == self.dtype:
            physics = copy.deepcopy(self.physics).to(device)
        return ForwardOperator(
            self.name,
            image_shape=self.image_shape,
            noise_sigma=self.noise_sigma,
            norm_sq=self.norm_sq,
            lambda_min=self.lambda_min,
            kernel=self._kernel,
            masks=self._masks,
            device=device,
            dtype=dtype,
            physics=physics,
        )


def _inpainting_masks(n_images, height, width, mask_ratio, seed, owner):
    """(n, H, W) masks, each removing exactly round(mask_ratio H W) pixels
    drawn from one generator seeded with ``seed``, image after image."""
    n_pixels = height * width
    n_removed = int(np.floor(mask_ratio * n_pixels + 0.5))
    if n_removed == n_pixels:
        fail(
            owner,
            "mask_ratio",
            mask_ratio,
            f"a ratio that keeps at least one of the {n_pixels} pixels",
        )
    gen = torch.Generator(device="cpu").manual_seed(seed)
    masks = torch.ones(n_images, n_pixels, dtype=torch.float64)
    for mask in masks:
        mask[torch.randperm(n_pixels, generator=gen)[:n_removed]] = 0.0
    return masks.reshape(n_images, height, width), n_removed


def make_forward(
    task,
    *,
    image_shape,
    n_images=1,
    noise_sigma=25 / 255,
    kernel_size=9,
    blur_sigma=1.0,
    mask_ratio=0.5,
    seed=0,
    device="cpu",
    dtype=torch.float32,
    owner="",
):
    """The forward operator of ``task`` for ``n_images`` images of ``image_shape``.

    ``"denoising"``: A = I, ||A||^2 = lambda_min = 1. ``"deblurring"``:
    circular convolution with :func:`gaussian_kernel` (odd ``kernel_size <=
    min(H, W)``, ``blur_sigma`` in (0.1, kernel_size / 2]); ||A||^2 and
    lambda_min are the extremes of its exact spectrum. ``"inpainting"``: A_i =
    diag(mask_i), each mask removing exactly round(mask_ratio H W) pixels (in
    all channels) drawn from ``seed``; ||A||^2 = 1, lambda_min = 0 when a
    pixel is removed. Only the parameters of ``task`` are read and validated;
    a bad one raises a one-line ``ValueError`` naming it.
    """
    check_choice(task, "task", TASKS, owner)
    shape = tuple(image_shape) if isinstance(image_shape, tuple | list) else ()
    if len(shape) != 3:
        fail(owner, "image_shape", image_shape, "a tuple (C, H, W) of integers >= 1")
    shape = tuple(check_int(s, "image_shape", 1, owner=owner) for s in shape)
    n_images = check_int(n_images, "n_images", 1, owner=owner)
    height, width = shape[1:]
    noise_sigma = check_real(
        noise_sigma, "noise_sigma", 0, NOISE_SIGMA_MAX, owner=owner
    )
    dtype = check_dtype(dtype, owner=owner)
    common = dict(
        image_shape=shape, noise_sigma=noise_sigma, device=device, dtype=dtype
    )
    if task == "denoising":
        return ForwardOperator(task, norm_sq=1.0, lambda_min=1.0, **common)
    if task == "deblurring":
        kernel_size = check_int(
            kernel_size,
            "kernel_size",
            1,
            min(height, width),
            owner,
            odd=True,
            high_label="min(H, W)",
        )
        blur_sigma = check_real(
            blur_sigma,
            "blur_sigma",
            BLUR_SIGMA_MIN,
            kernel_size / 2,
            low_open=True,
            owner=owner,
            high_label="kernel_size / 2",
        )
        kernel = gaussian_kernel(kernel_size, blur_sigma)
        spectrum = blur_spectrum_sq(kernel, height, width)
        return ForwardOperator(
            task,
            norm_sq=spectrum.max().item(),
            lambda_min=spectrum.min().item(),
            kernel=kernel,
            **common,
        )
    mask_ratio = check_real(mask_ratio, "mask_ratio", 0, MASK_RATIO_MAX, owner=owner)
    seed = check_int(seed, "seed", low=0, owner=owner)
    masks, n_removed = _inpainting_masks(
        n_images, height, width, mask_ratio, seed, owner
    )
    return ForwardOperator(
        task,
        norm_sq=1.0,
        lambda_min=0.0 if n_removed > 0 else 1.0,
        masks=masks,
        **common,
    )
