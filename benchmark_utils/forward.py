"""Forward problems (denoising, deblurring, inpainting) built on deepinv physics.

A forward problem is a linear measurement operator ``A`` acting on batches of
images of shape ``(B, C, H, W)`` together with a Gaussian noise level: the
measurement of a clean image ``x`` is ``y = A x + noise_sigma * n`` with ``n``
standard normal (ALGORITHMS.md, section 1). :func:`make_forward` builds a
:class:`ForwardOperator` for one task; the linear algebra is delegated to
``deepinv.physics`` (``Denoising``, ``BlurFFT``, ``Inpainting``), and the
operator also carries the two spectral constants the lower-level solvers need:
``norm_sq = ||A||^2`` (largest eigenvalue of ``A^T A``) and ``lambda_min``
(smallest eigenvalue of ``A^T A``), both exact for the three tasks.
"""

import math
import numbers

import numpy as np
import torch

TASKS = ("denoising", "deblurring", "inpainting")


def _check_int(value, name, *, low=None):
    """Return ``value`` as an ``int`` or raise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value


def _check_real(value, name):
    """Return ``value`` as a finite ``float`` or raise a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_image_shape(image_shape):
    """Return ``image_shape`` as a tuple ``(C, H, W)`` of positive ints."""
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) != 3
        or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
            for s in shape
        )
    ):
        raise ValueError(
            "image_shape must be a tuple (C, H, W) of positive integers, "
            f"got {image_shape!r}"
        )
    return tuple(int(s) for s in shape)


def _check_dtype(dtype):
    """Return ``dtype`` if it is a real floating torch dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"dtype must be a real floating torch dtype (e.g. torch.float32 or "
            f"torch.float64), got {dtype!r}"
        )
    return dtype


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
    """
    radius = kernel_size // 2
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2.0 * blur_sigma**2))
    kernel = g[:, None] * g[None, :]
    return kernel / kernel.sum()


def blur_spectrum_sq(kernel, height, width):
    """Squared moduli of the DFT of a kernel zero-padded to the image grid.

    These are the eigenvalues of ``A^T A`` for the circular convolution ``A``
    with ``kernel`` on ``height x width`` images (centring the kernel only
    changes the phase of its DFT, not its modulus).

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


class ForwardOperator:
    """Linear measurement operator with Gaussian noise, batched over images.

    Instances are built by :func:`make_forward`; the linear maps are those of
    the deepinv physics object stored in :attr:`physics`.

    Parameters
    ----------
    name : str
        The task, one of ``"denoising"``, ``"deblurring"``, ``"inpainting"``.
    build_physics : callable
        ``build_physics(device, dtype)`` returns the deepinv physics whose
        ``A``, ``A_adjoint`` and ``A_adjoint_A`` implement the operator, with
        all its buffers on ``device`` in ``dtype``.
    image_shape : tuple of int
        ``(C, H, W)``, the shape of one image.
    noise_sigma : float
        Standard deviation of the Gaussian measurement noise.
    norm_sq : float
        ``||A||^2``, the largest eigenvalue of ``A^T A``.
    lambda_min : float
        The smallest eigenvalue of ``A^T A``.
    device : str or torch.device
        Device of the operator's buffers (and of the expected inputs).
    dtype : torch.dtype
        Floating dtype of the operator's buffers (and of the expected inputs).
    kernel : torch.Tensor or None
        Blur kernel ``(k, k)`` (float64, CPU) for deblurring, else ``None``.
    mask : torch.Tensor or None
        Pixel mask ``(H, W)`` (float64, CPU, 1 = kept pixel) for inpainting,
        else ``None``.

    Attributes
    ----------
    physics : deepinv.physics.Physics
        The underlying deepinv operator.
    kernel, mask : torch.Tensor or None
        As above, on :attr:`device` in :attr:`dtype`.
    """

    def __init__(
        self,
        name,
        build_physics,
        *,
        image_shape,
        noise_sigma,
        norm_sq,
        lambda_min,
        device="cpu",
        dtype=torch.float32,
        kernel=None,
        mask=None,
    ):
        self.name = name
        self.image_shape = tuple(image_shape)
        self.noise_sigma = float(noise_sigma)
        self.norm_sq = float(norm_sq)
        self.lambda_min = float(lambda_min)
        self.device = torch.device(device)
        self.dtype = _check_dtype(dtype)
        self._build_physics = build_physics
        self._kernel = kernel
        self._mask = mask
        self.physics = build_physics(self.device, self.dtype)
        self.kernel = None if kernel is None else kernel.to(self.device, self.dtype)
        # A^T A of the circular blur is diagonal in Fourier: |DFT(kernel)|^2.
        # Applying it directly is exact and much faster than deepinv's
        # A_adjoint_A, whose per-call overhead dominated small batches.
        self._ata_spectrum = None
        if name == "deblurring" and kernel is not None:
            h, w = self.image_shape[-2:]
            spec = blur_spectrum_sq(kernel, h, w)[:, : w // 2 + 1]
            self._ata_spectrum = spec.to(self.device, self.dtype)
        self.mask = None if mask is None else mask.to(self.device, self.dtype)

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
        """Apply the operator: ``A x``.

        Parameters
        ----------
        x : torch.Tensor
            Images of shape ``(B, C, H, W)``.

        Returns
        -------
        y : torch.Tensor
            Noiseless measurements, same shape as ``x``.
        """
        self._check_input(x, "x")
        return self.physics.A(x)

    def A_adjoint(self, y):
        """Apply the adjoint operator: ``A^T y``.

        Parameters
        ----------
        y : torch.Tensor
            Measurements of shape ``(B, C, H, W)``.

        Returns
        -------
        x : torch.Tensor
            ``A^T y``, same shape as ``y``.
        """
        self._check_input(y, "y")
        return self.physics.A_adjoint(y)

    def AtA(self, x):
        """Apply the normal operator: ``A^T A x``.

        Parameters
        ----------
        x : torch.Tensor
            Images of shape ``(B, C, H, W)``.

        Returns
        -------
        out : torch.Tensor
            ``A^T A x``, same shape as ``x``.
        """
        self._check_input(x, "x")
        if self._ata_spectrum is not None:
            h, w = self.image_shape[-2:]
            return torch.fft.irfft2(torch.fft.rfft2(x) * self._ata_spectrum, s=(h, w))
        return self.physics.A_adjoint_A(x)

    def measure(self, x, seed):
        """Noisy measurements ``y = A x + noise_sigma * n`` with frozen noise.

        The standard normal noise ``n`` is drawn in float64 on the CPU from a
        local ``torch.Generator`` seeded with ``seed``, then cast to the dtype
        and moved to the device of ``x``: the same seed gives the same noise on
        every device and (up to rounding) in every dtype, and the global torch
        RNG is untouched. The noise of image ``b`` depends on its position in
        the batch. For inpainting the noise is also added on removed pixels,
        exactly as the formula says; it lies in the kernel of ``A^T`` and so
        does not change any lower-level problem.

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
        seed = _check_int(seed, "seed", low=0)
        self._check_input(x, "x")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(tuple(x.shape), generator=gen, dtype=torch.float64)
        noise = noise.to(device=x.device, dtype=x.dtype)
        with torch.no_grad():
            return self.physics.A(x) + self.noise_sigma * noise

    def to(self, device=None, dtype=None):
        """Copy of the operator on another device and/or in another dtype.

        Like :meth:`torch.Tensor.to`, this returns a new operator (rebuilt from
        float64 CPU data, so no precision is lost going float32 -> float64) and
        leaves ``self`` unchanged: write ``op = op.to(device, dtype)``.

        Parameters
        ----------
        device : str or torch.device or None
            Target device; ``None`` keeps the current one.
        dtype : torch.dtype or None
            Target floating dtype; ``None`` keeps the current one.

        Returns
        -------
        op : ForwardOperator
            The operator on ``device`` in ``dtype``.
        """
        return ForwardOperator(
            self.name,
            self._build_physics,
            image_shape=self.image_shape,
            noise_sigma=self.noise_sigma,
            norm_sq=self.norm_sq,
            lambda_min=self.lambda_min,
            device=self.device if device is None else device,
            dtype=self.dtype if dtype is None else _check_dtype(dtype),
            kernel=self._kernel,
            mask=self._mask,
        )


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
):
    """Build the forward operator of one imaging task.

    - ``"denoising"``: ``A = I`` (``deepinv.physics.Denoising``);
      ``norm_sq = lambda_min = 1``.
    - ``"deblurring"``: circular convolution with a normalised
      ``kernel_size x kernel_size`` Gaussian kernel of standard deviation
      ``blur_sigma`` (``deepinv.physics.BlurFFT``, periodic boundary). Its
      eigenvalues are the ``|DFT(kernel)|^2`` on the ``H x W`` frequency grid,
      so ``norm_sq`` (their max, 1 for this kernel) and ``lambda_min`` (their
      min, small but positive for a Gaussian) are exact.
    - ``"inpainting"``: ``A = diag(mask)`` (``deepinv.physics.Inpainting``)
      where the mask removes exactly ``round(mask_ratio * H * W)`` pixels, at
      positions drawn from ``seed``; a removed pixel is removed in all
      channels. ``norm_sq = 1``; ``lambda_min = 0`` if a pixel is removed,
      else 1.

    Parameters
    ----------
    task : str
        ``"denoising"``, ``"deblurring"`` or ``"inpainting"``.
    image_shape : tuple of int
        ``(C, H, W)`` of the images the operator acts on.
    noise_sigma : float, default=25/255
        Standard deviation of the measurement noise, ``>= 0``.
    kernel_size : int, default=9
        Side of the blur kernel: odd, ``>= 1`` (for deblurring also
        ``<= min(H, W)``). Validated for every task, used for deblurring.
    blur_sigma : float, default=1.0
        Standard deviation of the Gaussian kernel in pixels, ``> 0``.
    mask_ratio : float, default=0.5
        Fraction of pixels REMOVED by the inpainting mask, in ``[0, 1)``.
    seed : int, default=0
        Seed of the inpainting mask (local ``torch.Generator`` on CPU).
    device : str or torch.device, default="cpu"
        Device of the operator.
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the operator.

    Returns
    -------
    op : ForwardOperator
        The operator, with ``name == task``.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    n_channels, height, width = _check_image_shape(image_shape)
    noise_sigma = _check_real(noise_sigma, "noise_sigma")
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma}")
    kernel_size = _check_int(kernel_size, "kernel_size", low=1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 1, got {kernel_size}")
    blur_sigma = _check_real(blur_sigma, "blur_sigma")
    if blur_sigma <= 0:
        raise ValueError(f"blur_sigma must be > 0, got {blur_sigma}")
    mask_ratio = _check_real(mask_ratio, "mask_ratio")
    if not 0 <= mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    seed = _check_int(seed, "seed", low=0)
    dtype = _check_dtype(dtype)
    device = torch.device(device)
    image_shape = (n_channels, height, width)

    from deepinv.physics import BlurFFT, Denoising, GaussianNoise, Inpainting

    def noise_model():
        return GaussianNoise(sigma=noise_sigma)

    common = {
        "image_shape": image_shape,
        "noise_sigma": noise_sigma,
        "device": device,
        "dtype": dtype,
    }
    if task == "denoising":

        def build(dev, dt):
            return Denoising(noise_model=noise_model(), device=dev)

        return ForwardOperator(task, build, norm_sq=1.0, lambda_min=1.0, **common)

    if task == "deblurring":
        if kernel_size > min(height, width):
            raise ValueError(
                f"kernel_size must be <= min(H, W) = {min(height, width)} for "
                f"deblurring, got {kernel_size}"
            )
        kernel = gaussian_kernel(kernel_size, blur_sigma)
        spectrum = blur_spectrum_sq(kernel, height, width)

        def build(dev, dt):
            return BlurFFT(
                img_size=image_shape,
                filter=kernel.to(dtype=dt)[None, None],
                device=dev,
                noise_model=noise_model(),
            )

        return ForwardOperator(
            task,
            build,
            norm_sq=spectrum.max().item(),
            lambda_min=spectrum.min().item(),
            kernel=kernel,
            **common,
        )

    n_pixels = height * width
    n_removed = int(np.floor(mask_ratio * n_pixels + 0.5))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    removed = torch.randperm(n_pixels, generator=gen)[:n_removed]
    mask = torch.ones(n_pixels, dtype=torch.float64)
    mask[removed] = 0.0
    mask = mask.reshape(height, width)

    def build(dev, dt):
        return Inpainting(
            img_size=image_shape,
            mask=mask.to(dtype=dt)[None, None],
            device=dev,
            noise_model=noise_model(),
        )

    return ForwardOperator(
        task,
        build,
        norm_sq=1.0,
        lambda_min=0.0 if n_removed > 0 else 1.0,
        mask=mask,
        **common,
    )
