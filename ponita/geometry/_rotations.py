"""Rotation matrices: from axis and angle, from quaternions, and uniformly at random."""

import torch
from torch import Tensor


def axis_angle_to_matrix(axis: Tensor, angle: float | Tensor) -> Tensor:
    r"""Rodrigues' formula, :math:`R = I + \sin\alpha\,[u]_\times + (1 - \cos\alpha)[u]_\times^2`.

    Args:
        axis: rotation axis (normalised internally).
        angle: rotation angle in radians.

    Returns:
        Rotation matrices.

    Shapes:
        axis ``[..., 3]`` → ``[..., 3, 3]``

    Example:
        >>> axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0]), 3.141592653589793 / 2).round().abs()
        tensor([[0., 1., 0.],
                [1., 0., 0.],
                [0., 0., 1.]])
    """
    u = axis / axis.norm(dim=-1, keepdim=True)  # [..., 3]
    angle = torch.as_tensor(angle, dtype=u.dtype)
    zero = torch.zeros_like(u[..., 0])
    cross = torch.stack(
        [zero, -u[..., 2], u[..., 1], u[..., 2], zero, -u[..., 0], -u[..., 1], u[..., 0], zero], dim=-1
    ).unflatten(-1, (3, 3))  # [..., 3, 3]
    eye = torch.eye(3, dtype=u.dtype, device=u.device).expand_as(cross)
    sin, cos = angle.sin()[..., None, None], angle.cos()[..., None, None]
    return eye + sin * cross + (1.0 - cos) * cross @ cross


def quaternion_to_matrix(quaternion: Tensor) -> Tensor:
    """Rotation matrices of (normalised) quaternions ``(w, x, y, z)``.

    Shapes:
        quaternion ``[..., 4]`` → ``[..., 3, 3]``

    Example:
        >>> quaternion_to_matrix(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    w, x, y, z = (quaternion / quaternion.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))  # [..., 3, 3]


def random_rotation(dim: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""A rotation matrix drawn uniformly (Haar measure) from SO(n).

    The Q factor of the QR decomposition of a Gaussian matrix, with the signs fixed so that the
    distribution is uniform, and one column flipped if needed so that :math:`\det R = +1`.

    Args:
        dim: spatial dimension :math:`n` (2 or 3).
        generator: random number generator (``None``: the global one).
        dtype: floating dtype of the result.

    Returns:
        A rotation matrix, :math:`R^\top R = I`, :math:`\det R = 1`.

    Raises:
        ValueError: if ``dim`` is not 2 or 3.

    Shapes:
        → ``[dim, dim]``

    Example:
        >>> R = random_rotation(3, torch.Generator().manual_seed(0))
        >>> bool(torch.allclose(R @ R.T, torch.eye(3, dtype=torch.float64))), round(float(torch.det(R)), 6)
        (True, 1.0)
    """
    if dim not in (2, 3):
        raise ValueError(f"random_rotation supports dim 2 or 3, got {dim!r}.")
    gaussian = torch.randn(dim, dim, generator=generator, dtype=torch.float64)  # [n, n]
    q, r = torch.linalg.qr(gaussian)
    signs = torch.sign(torch.diagonal(r))  # [n]
    signs[signs == 0] = 1.0
    q = q * signs  # uniform (Haar) distribution on O(n)
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)
