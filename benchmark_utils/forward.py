"""Forward problems (denoising, deblurring, inpainting) over deepinv physics.

The measurement of a clean image ``x`` is ``y = A x + noise_sigma * n`` with
``n`` standard normal, drawn once from a seed and frozen (``docs/maths.md``
section 1). :func:`make_forward` builds the :class:`ForwardOperator` of one
task: a thin layer over a ``deepinv.physics`` operator (``Denoising``,
``BlurFFT``, ``Inpainting``, each carrying a ``GaussianNoise`` model of the
task's ``noise_sigma``) that adds what the lower-level solvers need and
deepinv does not give exactly: the spectral constants ``norm_sq = ||A||^2``
and ``lambda_min = lambda_min(A^T A)``, a one-FFT ``A^T A`` for the blur, and
frozen, device-independent noise.

Three computations are kept here rather than taken from deepinv because
deepinv's version gives different bits, and so different data and curves:

- the Gaussian kernel (:func:`gaussian_kernel`): deepinv's
  ``physics.functional.gaussian_blur`` multiplies
  ``exp(-0.5 t^2 / s^2) / (sqrt(2 pi) s)`` factors on a ``linspace`` grid,
  which differs from ``exp(-t^2 / (2 s^2))`` by up to one float64 ulp, and
  ``lambda_min`` of the blur (about 5e-14 by default) follows those bits;
- the spectrum of ``A^T A`` (:func:`blur_spectrum_sq`): ``BlurFFT.mask`` is
  ``|DFT|`` of the centred filter in the physics' dtype, whose square differs
  from the float64 ``|DFT|^2`` by up to 3e-7 in float32;
- the noise (:meth:`ForwardOperator.measure`): ``GaussianNoise`` draws in the
  dtype and on the device of its input and keeps ``sigma`` as a float32
  tensor, so its float32 noise is another sample and its noise on a GPU
  another stream; the noise here is drawn in float64 on the CPU.

The inpainting mask removes an exact number of pixels (deepinv's
``BernoulliSplittingMaskGenerator`` draws a Bernoulli mask instead).
"""

import copy

import numpy as np
import torch

from .validation import check_choice, check_dtype, check_int, check_real, fail

TASKS = ("denoising", "deblurring", "inpainting")

#: Largest ``noise_sigma``: the noise standard deviation may not exceed the
#: ``[0, 1]`` range of the pixels (``noise_level <= 255`` on the 0-255 scale).
NOISE_SIGMA_MAX = 1.0
#: ``blur_sigma`` must exceed this: below it the off-centre weights of the
#: kernel are under 1e-21 and the blur is the identity to float64 precision.
BLUR_SIGMA_MIN = 0.1
#: Largest ``mask_ratio`` (fraction of pixels removed by the inpainting mask).
MASK_RATIO_MAX = 0.95


def gaussian_kernel(kernel_size, blur_sigma):
    """Normalised isotropic Gaussian blur kernel.

    Parameters
    ----------
    kernel_size : int
        Odd side length ``k`` of the kernel.
    blur_sigma : float
        Standard deviation of the Gaussian, in pixels.

    Returns
    -------
    kernel : torch.Tensor
        Float64 tensor of shape ``(k, k)``, entries
        ``exp(-(i^2 + j^2) / (2 blur_sigma^2))`` for ``i, j`` in
        ``-(k // 2) .. k // 2``, divided by their sum (so it sums to 1).
        Equal to ``deepinv.physics.functional.gaussian_blur`` up to one
        float64 ulp (see the module docstring for why it is not used).
    """
    radius = kernel_size // 2
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2.0 * blur_sigma**2))
    kernel = g[:, None] * g[None, :]
    return kernel / kernel.sum()


def blur_spectrum_sq(kernel, height, width):
    """Squared moduli of the DFT of a kernel zero-padded to the image grid.

    These are the eigenvalues of ``A^T A`` for the circular convolution ``A``
    with ``kernel`` on ``height x width`` images (centring the kernel, as
    ``BlurFFT`` does, only changes the phase of its DFT).

    Parameters
    ----------
    kernel : torch.Tensor
        2D kernel of shape ``(k, k)`` with ``k <= min(height, width)``.
    height, width : int
        Image size.

    Returns
    -------
    spectrum : torch.Tensor
        Float64 tensor of shape ``(height, width)``.
    """
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
        mask=mask.to(dtype=dtype)[None, None],
        device=device,
        noise_model=noise,
    )


class ForwardOperator:
    """Linear measurement operator with Gaussian noise, batched over images.

    Built by :func:`make_forward`; the linear maps are those of the deepinv
    physics :attr:`physics`. Operators are not modified after construction:
    :meth:`to` returns a new one.

    Parameters
    ----------
    name : str
        The task, one of :data:`TASKS`.
    image_shape : tuple of int
        ``(C, H, W)``, the shape of one image.
    noise_sigma : float
        Standard deviation of the Gaussian measurement noise.
    norm_sq, lambda_min : float
        Largest and smallest eigenvalues of ``A^T A``.
    kernel, mask : torch.Tensor or None
        Float64 CPU blur kernel ``(k, k)`` (deblurring) or pixel mask
        ``(H, W)`` (inpainting, 1 = kept pixel), else ``None``.
    device : str or torch.device, default="cpu"
        Device of the operator's buffers (and of the expected inputs).
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the operator's buffers (and of the expected inputs).
    physics : deepinv.physics.LinearPhysics, optional
        The operator on ``device`` in ``dtype``; built from ``kernel`` or
        ``mask`` when ``None``.

    Attributes
    ----------
    physics : deepinv.physics.LinearPhysics
        The underlying deepinv operator.
    kernel, mask : torch.Tensor or None
        As above, on :attr:`device` in :attr:`dtype`.
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
        mask=None,
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
        self._kernel, self._mask = kernel, mask
        if physics is None:
            physics = _physics(
                name, self.image_shape, self.noise_sigma, kernel, mask, device, dtype
            )
        self.physics = physics
        self.kernel = None if kernel is None else kernel.to(self.device, dtype)
        self.mask = None if mask is None else mask.to(self.device, dtype)
        # A^T A of the circular blur is diagonal in Fourier: |DFT(kernel)|^2.
        # One rfft/irfft pair is exact and much faster than deepinv's
        # A_adjoint_A, whose per-call overhead dominated small batches.
        self._ata_spectrum = None
        if kernel is not None:
            h, w = self.image_shape[-2:]
            spec = blur_spectrum_sq(kernel, h, w)[:, : w // 2 + 1]
            self._ata_spectrum = spec.to(self.device, dtype)

    @property
    def is_identity(self):
        """True when A = I (denoising): lets callers skip A^T A entirely."""
        return self.name == "denoising"

    def __repr__(self):
        return (
            f"ForwardOperator(name={self.name!r}, image_shape={self.image_shape}, "
            f"noise_sigma={self.noise_sigma:g}, norm_sq={self.norm_sq:g}, "
            f"lambda_min={self.lambda_min:g}, device={self.device}, "
            f"dtype={self.dtype})"
        )

    def _check_input(self, x, name):
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

    def A(self, x):
        """``A x`` for images ``x`` of shape ``(B, C, H, W)`` (same shape out)."""
        self._check_input(x, "x")
        return self.physics.A(x)

    def A_adjoint(self, y):
        """``A^T y`` for measurements ``y`` of shape ``(B, C, H, W)``."""
        self._check_input(y, "y")
        return self.physics.A_adjoint(y)

    def AtA(self, x):
        """``A^T A x`` for images ``x`` of shape ``(B, C, H, W)``."""
        self._check_input(x, "x")
        if self._ata_spectrum is not None:
            h, w = self.image_shape[-2:]
            return torch.fft.irfft2(torch.fft.rfft2(x) * self._ata_spectrum, s=(h, w))
        return self.physics.A_adjoint_A(x)

    def measure(self, x, seed):
        """Noisy measurements ``y = A x + noise_sigma * n`` with frozen noise.

        The standard normal ``n`` is drawn in float64 on the CPU from a local
        ``torch.Generator`` seeded with ``seed``, then cast to the dtype and
        moved to the device of ``x``: the same seed gives the same noise on
        every device and (up to rounding) in every dtype, and the global torch
        RNG is untouched. The noise of image ``b`` depends on its position in
        the batch. For inpainting the noise is also added on removed pixels,
        as the formula says; it lies in the kernel of ``A^T`` and so changes
        no lower-level problem.

        Parameters
        ----------
        x : torch.Tensor
            Clean images of shape ``(B, C, H, W)``.
        seed : int
            Non-negative seed of the noise.

        Returns
        -------
        y : torch.Tensor
            Measurements, same shape, dtype and device as ``x`` (no autograd
            graph).
        """
        seed = check_int(seed, "seed", low=0)
        self._check_input(x, "x")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            return self.physics.A(x) + self.noise_sigma * noise

    def to(self, device=None, dtype=None):
        """The operator on another device and/or in another dtype.

        Like :meth:`torch.Tensor.to`, this leaves ``self`` unchanged (write
        ``op = op.to(device, dtype)``) and returns ``self`` when nothing
        changes. A device change moves a copy of the physics with
        ``nn.Module.to``, so the operator has the same coefficients on every
        device. A dtype change rebuilds the physics from the float64 kernel or
        mask: ``nn.Module.to(dtype)`` would cast the complex phase buffer of
        ``BlurFFT`` to a real dtype (dropping its imaginary part) and could
        not give back precision lost in float32.

        Parameters
        ----------
        device : str or torch.device or None
            Target device; ``None`` keeps the current one.
        dtype : torch.dtype or None
            Target floating dtype; ``None`` keeps the current one.

        Returns
        -------
        op : ForwardOperator
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
            mask=self._mask,
            device=device,
            dtype=dtype,
            physics=physics,
        )


def _inpainting_mask(height, width, mask_ratio, seed, owner):
    """Mask removing exactly ``round(mask_ratio * H * W)`` seeded pixels."""
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
    removed = torch.randperm(n_pixels, generator=gen)[:n_removed]
    mask = torch.ones(n_pixels, dtype=torch.float64)
    mask[removed] = 0.0
    return mask.reshape(height, width), n_removed


def make_forward(
    task,
    *,
    image_shape,
    noise_sigma=25 / 255,
    kernel_size=9,
    blur_sigma=1.0,
    mask_ratio=0.5,
    seed=0,
    device="cpu",
    dtype=torch.float32,
    owner="",
):
    """Build the forward operator of one imaging task (``docs/maths.md`` s. 1).

    - ``"denoising"``: ``A = I`` (``deepinv.physics.Denoising``);
      ``norm_sq = lambda_min = 1``.
    - ``"deblurring"``: circular convolution with the normalised
      ``kernel_size x kernel_size`` Gaussian kernel :func:`gaussian_kernel`
      (``deepinv.physics.BlurFFT``, periodic boundary). The eigenvalues of
      ``A^T A`` are the ``|DFT(kernel)|^2`` on the ``H x W`` frequency grid,
      so ``norm_sq`` (their max, 1 for this kernel) and ``lambda_min`` (their
      min, small but positive for a Gaussian) are exact.
    - ``"inpainting"``: ``A = diag(mask)`` (``deepinv.physics.Inpainting``)
      where the mask removes exactly ``round(mask_ratio * H * W)`` pixels, at
      positions drawn from ``seed``, in all channels. ``norm_sq = 1``;
      ``lambda_min = 0`` if a pixel is removed, else 1.

    Only the parameters of ``task`` are read and validated.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    image_shape : tuple of int
        ``(C, H, W)`` of the images the operator acts on.
    noise_sigma : float, default=25/255
        Standard deviation of the noise, in ``[0, NOISE_SIGMA_MAX]``.
    kernel_size : int, default=9
        Deblurring: odd side of the kernel, ``1 <= kernel_size <= min(H, W)``.
    blur_sigma : float, default=1.0
        Deblurring: standard deviation of the kernel in pixels, in
        ``(BLUR_SIGMA_MIN, kernel_size / 2]``; past ``kernel_size / 2`` the
        cut kernel is a near-flat box whatever its sigma.
    mask_ratio : float, default=0.5
        Inpainting: fraction of pixels REMOVED, in ``[0, MASK_RATIO_MAX]``,
        and at least one pixel must be kept.
    seed : int, default=0
        Inpainting: seed of the mask (local ``torch.Generator`` on the CPU).
    device : str or torch.device, default="cpu"
        Device of the operator.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the operator.
    owner : str, default=""
        Component named in error messages (the dataset, e.g. ``"deblurring"``).

    Returns
    -------
    op : ForwardOperator
        The operator, with ``name == task``.

    Raises
    ------
    ValueError
        A parameter out of range (one line naming it and its range).
    """
    check_choice(task, "task", TASKS, owner)
    shape = tuple(image_shape) if isinstance(image_shape, tuple | list) else ()
    if len(shape) != 3:
        fail(owner, "image_shape", image_shape, "a tuple (C, H, W) of integers >= 1")
    shape = tuple(check_int(s, "image_shape", 1, owner=owner) for s in shape)
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
        size = min(height, width)
        kernel_size = check_int(
            kernel_size, "kernel_size", 1, size, owner, odd=True, high_label="min(H, W)"
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
    mask, n_removed = _inpainting_mask(height, width, mask_ratio, seed, owner)
    return ForwardOperator(
        task,
        norm_sq=1.0,
        lambda_min=0.0 if n_removed > 0 else 1.0,
        mask=mask,
        **common,
    )
