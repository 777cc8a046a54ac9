"""AdamP and SGDP: Adam and SGD that remove the radial part of the update on scale-invariant weights.

A weight followed by a normalization layer (a ``Linear`` or ``Conv`` before BatchNorm/LayerNorm) is
scale-invariant: the loss does not change when the weight is rescaled, so its gradient is orthogonal to it.
Momentum then keeps pushing such weights outward, their norm grows and their effective step size
``lr / ||w||**2`` decays too early. AdamP and SGDP detect these weights from the cosine similarity between
gradient and weight and project the update onto the tangent space of the weight, and scale their weight
decay by ``wd_ratio``. Other weights get the plain Adam/SGD update.

Both optimizers share the detection and projection code (:func:`_projection_factors`); both have a
single-tensor and a multi-tensor (``foreach``) path for the element-wise work, which compute the same thing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from skopt_nn._space import Categorical, Dimension, Float, OneMinusLog, Tuple
from skopt_nn._validation import Interval, check_bool, check_float, check_option, check_pair, invalid_param_message
from skopt_nn.optim._registry import ConvergenceCase, ErrorInput, OptimizerSpec, register

__all__ = ["SGDP", "AdamP", "adamp", "sgdp"]

_PAPER = (
    "Heo, Chun, Oh, Han, Yun, Kim, Uh & Ha, AdamP: Slowing Down the Slowdown for Momentum Optimizers on "
    "Scale-invariant Weights, ICLR 2021 (arXiv:2006.08217)"
)
_URL = "https://arxiv.org/abs/2006.08217"

_NON_NEGATIVE = Interval(0.0, None, "left")
_UNIT_CLOSED = Interval(0.0, 1.0, "both")
_UNIT_OPEN_RIGHT = Interval(0.0, 1.0, "left")

# --------------------------------------------------------------------------------------------------- projection


def _matrix(x: Tensor, rows: int) -> Tensor:
    return x if x.ndim == 2 else x.reshape(rows, -1)


def _projection_factors(
    weights: Sequence[Tensor],
    grads: Sequence[Tensor],
    updates: Sequence[Tensor],
    *,
    step_size: float,
    decay: float,
    delta: float,
    wd_ratio: float,
    eps: float,
) -> list[Tensor]:
    r"""Per-row factors :math:`\alpha` such that ``w * alpha - step_size * u`` is the projected, decayed step.

    For every weight ``w`` (``ndim > 1``, rows along the first dimension) with gradient ``g`` and update
    direction ``u``, the rule of the reference implementation (clovaai/AdamP, ``_projection``) is

    * channel view: if :math:`\max_i |\cos(g_i, w_i)| < \delta/\sqrt{d_{row}}` over the rows ``i``, project each
      row: :math:`u_i \leftarrow u_i - \hat w_i \langle \hat w_i, u_i\rangle` with
      :math:`\hat w_i = w_i / (\|w_i\| + \epsilon)`;
    * otherwise layer view: if :math:`|\cos(g, w)| < \delta/\sqrt{numel}` over the whole tensor, project with
      :math:`\hat w = w / (\|w\| + \epsilon)`;
    * the decay factor is :math:`1 - decay \cdot r` with ``r = wd_ratio`` if projected, else 1.

    where :math:`\cos(x, y) = \langle x, y\rangle / (\max(\|x\|, \epsilon)\max(\|y\|, \epsilon))` (the definition of
    ``torch.nn.functional.cosine_similarity``, which the reference calls). Since the projection subtracts a
    multiple of ``w`` row by row, the step :math:`w (1 - decay\cdot r) - s (u - c \odot w)` equals
    :math:`w \odot \alpha - s\,u` with :math:`\alpha = 1 - decay\cdot r + s\,c`,
    :math:`c_i = \langle w_i, u_i\rangle / (\|w_i\| + \epsilon)^2` (or the layer-wide value). Returning
    :math:`\alpha` lets the caller apply projection, weight decay and step with two in-place operations and no
    copy of ``u``.

    Cost: four row reductions per weight (small, cache-resident kernels: concatenating the weights first
    allocates large temporaries and measured slower on CPU), then a fixed number of operations on the row
    statistics of all weights at once, the rows and the whole weights (layer view) side by side. The decision
    stays on device (no ``.item()``). Returns one tensor per weight, shaped ``(rows, 1, ..., 1)``.
    """
    num = len(weights)
    rows = [w.shape[0] for w in weights]
    vecdot, norm = torch.linalg.vecdot, torch.linalg.vector_norm
    gw_rows, g_norm_rows, w_norm_rows, wu_rows = [], [], [], []
    for w, g, u, n in zip(weights, grads, updates, rows):
        w, g, u = _matrix(w, n), _matrix(g, n), _matrix(u, n)
        gw_rows.append(vecdot(g, w))
        g_norm_rows.append(norm(g, dim=1))
        w_norm_rows.append(norm(w, dim=1))
        wu_rows.append(vecdot(w, u))
    # (4, rows): <g_i, w_i>, |g_i|, |w_i|, <w_i, u_i> of every row of every weight
    stats = torch.stack([torch.cat(x) for x in (gw_rows, g_norm_rows, w_norm_rows, wu_rows)])
    total_rows = stats.shape[1]
    row_threshold, layer_threshold, segment, row_counts = _layout(
        tuple(rows), tuple(w.numel() for w in weights), delta, stats.dtype, stats.device
    )

    def per_row(x: Tensor) -> Tensor:
        # (k, weights) -> (k, rows): each weight's value repeated over its rows
        return x.repeat_interleave(rows[0], dim=1) if segment is None else x.index_select(1, segment)

    def per_weight_sum(x: Tensor) -> Tensor:
        # (k, rows) -> (k, weights): sums over the rows of each weight
        if segment is None:
            return x.view(x.shape[0], num, rows[0]).sum(2)
        return x.new_zeros(x.shape[0], num).index_add_(1, segment, x)

    # layer view: <g, w>, |g|, |w|, <w, u> of each whole weight from the sums over its rows
    squared = stats.clone()
    squared[1:3].square_()
    layer_stats = per_weight_sum(squared)
    layer_stats[1:3].sqrt_()
    # rows and whole weights side by side: (4, rows + weights)
    gw, g_norm, w_norm, wu = torch.cat((stats, layer_stats), 1).unbind(0)
    cosine = gw.abs_().div_(g_norm.clamp_min_(eps).mul_(w_norm.clamp_min(eps)))
    radial = wu.div_((w_norm + eps).square_())  # <w, u> / (|w| + eps)^2

    # strict inequalities: a NaN cosine fails
    row_passes = cosine[:total_rows] < row_threshold
    layer = cosine[total_rows:] < layer_threshold
    if segment is None:
        channel = row_passes.view(num, rows[0]).all(1)
    else:
        channel = per_weight_sum(row_passes.to(stats.dtype).unsqueeze(0))[0] == row_counts
    # per weight: channel view used?, coefficient of the layer view (0 when not used), decay factor 1 - decay*r
    # (its two candidates computed in Python double as the reference does)
    per_weight = torch.stack(
        (
            channel.to(stats.dtype),
            torch.where(layer, radial[total_rows:], 0.0),
            torch.where(channel | layer, stats.new_full((), 1.0 - decay * wd_ratio), 1.0 - decay),
        )
    )
    use_channel, layer_coef, keep = per_row(per_weight).unbind(0)
    coef = torch.where(use_channel > 0, radial[:total_rows], layer_coef)
    alpha = torch.add(keep, coef, alpha=step_size) if step_size != 0.0 else keep
    # (rows, 1) broadcasts against a matrix; conv weights need (rows, 1, ..., 1)
    return [
        a if w.ndim == 2 else a.view((n,) + (1,) * (w.ndim - 1))
        for a, n, w in zip(alpha.unsqueeze(1).split(rows), rows, weights)
    ]


@functools.lru_cache(maxsize=64)
def _layout(
    rows: tuple[int, ...], sizes: tuple[int, ...], delta: float, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
    """Constants of a list of weights (cached: they depend on the shapes only).

    Returns the channel-view threshold of every row (``delta / sqrt(elements per row)``), the layer-view
    threshold of every weight (``delta / sqrt(elements)``), the weight index of every row (``None`` when all
    weights have the same number of rows) and the number of rows of every weight.
    """
    row_threshold = torch.tensor(
        [delta * math.sqrt(n / size) for n, size in zip(rows, sizes) for _ in range(n)], dtype=dtype, device=device
    )
    layer_threshold = torch.tensor([delta / math.sqrt(size) for size in sizes], dtype=dtype, device=device)
    counts = torch.tensor(rows, device=device)
    segment = None
    if any(n != rows[0] for n in rows):
        segment = torch.repeat_interleave(counts, output_size=sum(rows))
    return row_threshold, layer_threshold, segment, counts.to(dtype)


def _is_matrix(p: Tensor) -> bool:
    # the projection acts on tensors with ndim > 1 (scale-invariant candidates); empty ones have no direction
    return p.ndim > 1 and p.numel() > 0


def _step_matrices(
    weights: list[Tensor],
    grads: list[Tensor],
    updates: list[Tensor],
    *,
    step_size: float,
    decay: float,
    delta: float,
    wd_ratio: float,
    eps: float,
) -> None:
    """``w <- w * alpha - step_size * u`` for weights with ``ndim > 1``: projection, weight decay and step.

    Shared by AdamP and SGDP and by their single-tensor and foreach paths (same device and dtype).
    """
    factors = _projection_factors(
        weights, grads, updates, step_size=step_size, decay=decay, delta=delta, wd_ratio=wd_ratio, eps=eps
    )
    torch._foreach_mul_(weights, factors)
    torch._foreach_add_(weights, updates, alpha=-step_size)


def _split(mask: list[bool], *lists: Sequence[Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    """Each list split into its items where ``mask`` is true and where it is false."""
    return (
        [[x for x, m in zip(lst, mask) if m] for lst in lists],
        [[x for x, m in zip(lst, mask) if not m] for lst in lists],
    )


def _check_real(p: Tensor, owner: str) -> None:
    if torch.is_complex(p):
        raise RuntimeError(f"{owner} does not support complex parameters")


def _batches(tensorlists: list[list[Any]], steps: Sequence[int] | None = None) -> list[tuple[list[list[Any]], int]]:
    """``tensorlists`` split by device and dtype (and step number, when given): ``[(lists, step), ...]``."""
    grouped = torch.optim.Optimizer._group_tensors_by_device_and_dtype(tensorlists, with_indices=True)
    batches: list[tuple[list[list[Any]], int]] = []
    for lists, indices in grouped.values():
        lists = [list(x) for x in lists]
        if steps is None:
            batches.append((lists, 0))
            continue
        by_step: dict[int, list[int]] = {}
        for j, i in enumerate(indices):
            by_step.setdefault(steps[i], []).append(j)
        if len(by_step) == 1:
            batches.append((lists, steps[indices[0]]))
        else:
            batches.extend(([[x[j] for j in js] for x in lists], step) for step, js in by_step.items())
    return batches


# --------------------------------------------------------------------------------------------------- AdamP


class AdamP(torch.optim.Optimizer):
    r"""Adam with the radial component of the update removed on scale-invariant weights.

    .. math::
        \begin{aligned}
        &\textbf{input}: \gamma \text{ (lr)}, \beta_1, \beta_2 \text{ (betas)}, \epsilon \text{ (eps)},
            \lambda \text{ (weight\_decay)}, \delta \text{ (delta)}, \rho \text{ (wd\_ratio)} \\
        &m_0 \leftarrow 0, \; v_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots \\
        &\quad g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \\
        &\quad m_t \leftarrow \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
               v_t \leftarrow \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        &\quad d_t \leftarrow \sqrt{v_t} / \sqrt{1 - \beta_2^t} + \epsilon, \quad
               u_t \leftarrow m_t / d_t \quad
               (\textit{nesterov}: u_t \leftarrow (\beta_1 m_t + (1 - \beta_1) g_t) / d_t) \\
        &\quad r \leftarrow 1 \\
        &\quad \textbf{if}\ \theta \text{ has ndim} > 1 \textbf{ and } \text{for a view } V \text{ (rows, then the
               whole tensor)}\ \max_{i \in V} |\cos(g_{t,i}, \theta_{t-1,i})| < \delta / \sqrt{\dim V} \\
        &\quad\quad \hat\theta_i \leftarrow \theta_{t-1,i} / (\|\theta_{t-1,i}\| + \epsilon), \quad
               u_{t,i} \leftarrow u_{t,i} - \hat\theta_i \langle \hat\theta_i, u_{t,i} \rangle, \quad
               r \leftarrow \rho \\
        &\quad \theta_t \leftarrow \theta_{t-1} (1 - \gamma \lambda r) - \frac{\gamma}{1 - \beta_1^t} u_t
        \end{aligned}

    with :math:`\cos(x, y) = \langle x, y\rangle / (\max(\|x\|, \epsilon)\max(\|y\|, \epsilon))`. The views are
    those of the reference implementation: the "channel view" splits the tensor into its rows along the first
    dimension (output features/channels, :math:`\dim V` = elements per row), the "layer view" is the whole
    tensor (:math:`\dim V` = number of elements); the channel view is tried first and the first view that
    passes is used. 1-D parameters (biases, norm scales) always get the plain update with :math:`r = 1`.

    From Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights",
    ICLR 2021, https://arxiv.org/abs/2006.08217 (Algorithm 2), with the detection rule, the views, the
    :math:`\epsilon` placements and the weight decay of the authors' code (clovaai/AdamP, ``adamp/adamp.py``).

    Args:
        params: parameters or param groups.
        lr: learning rate :math:`\gamma` (default 1e-3).
        betas: :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps: :math:`\epsilon`, added to the denominator and used in the cosine and the normalisation of
            :math:`\hat\theta` (default 1e-8).
        weight_decay: decoupled weight decay :math:`\lambda` (default 0).
        delta: threshold :math:`\delta` of the cosine test (default 0.1).
        wd_ratio: factor :math:`\rho` of the weight decay on projected weights (default 0.1).
        nesterov: use the Nesterov form of the first moment (default False).
        foreach: ``True``/``None`` (default): element-wise work with ``torch._foreach_*`` over all tensors;
            ``False``: tensor by tensor. Both decide the projection of all weights of a group in one batch
            (four row reductions per weight, then a fixed number of small operations, no host sync), so the
            single-tensor path keeps each weight's update until that batch.

    .. warning::
        Readings of the reference where the paper is silent, and differences with the other libraries:

        * :math:`\epsilon` is added after the bias correction, :math:`\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon`,
          as in clovaai/AdamP and torch-optimizer. pytorch-optimizer adds it before
          (:math:`\sqrt{1-\beta_2^t}/(\sqrt{v_t} + \epsilon)`, i.e. an effective :math:`\epsilon/\sqrt{1-\beta_2^t}`):
          the trajectories agree exactly only for ``eps=0``.
        * The cosine uses ``max(norm, eps)`` in each factor (``F.cosine_similarity``, as clovaai/AdamP);
          torch-optimizer adds ``eps`` to each norm instead. This only matters for norms below ``eps``.
        * Weight decay is decoupled and multiplicative, :math:`\theta (1 - \gamma\lambda r)`, applied to every
          parameter (1-D ones with :math:`r = 1`) before the step, as in the reference.
        * The test uses the raw gradient :math:`g_t`, not the update, and is strict (``<``).
        * ``wd_ratio`` must lie in [0, 1] (as in pytorch-optimizer; the authors' code does not check it).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from skopt_nn.optim._adamp import AdamP
        >>> model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
        >>> opt = AdamP(model.parameters(), lr=1e-3, weight_decay=1e-2)
        >>> loss = model(torch.randn(16, 4)).pow(2).mean()
        >>> loss.backward()
        >>> opt.step()
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
        nesterov: bool = False,
        *,
        foreach: bool | None = None,
    ) -> None:
        name = type(self).__name__
        defaults = {
            "lr": check_float(lr, "lr", name, _NON_NEGATIVE),
            "betas": check_pair(betas, "betas", name, _UNIT_OPEN_RIGHT),
            "eps": check_float(eps, "eps", name, _NON_NEGATIVE),
            "weight_decay": check_float(weight_decay, "weight_decay", name, _NON_NEGATIVE),
            "delta": check_float(delta, "delta", name, _NON_NEGATIVE),
            "wd_ratio": check_float(wd_ratio, "wd_ratio", name, _UNIT_CLOSED),
            "nesterov": check_bool(nesterov, "nesterov", name),
            "foreach": check_option(foreach, "foreach", name, (None, False, True)),
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("foreach", None)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        exp_avgs: list[Tensor],
        exp_avg_sqs: list[Tensor],
        state_steps: list[int],
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if len(state) == 0:
                _check_real(p, type(self).__name__)
                # number of steps taken on this parameter (a Python int: survives weights_only loading)
                state["step"] = 0
                # first moment m_t: exponential moving average of the gradient
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                # second moment v_t: exponential moving average of the squared gradient
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            state_steps.append(state["step"])

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            exp_avgs: list[Tensor] = []
            exp_avg_sqs: list[Tensor] = []
            state_steps: list[int] = []
            self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, state_steps)
            if not params:
                continue
            beta1, beta2 = group["betas"]
            adamp(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                state_steps,
                foreach=group["foreach"],
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                delta=group["delta"],
                wd_ratio=group["wd_ratio"],
                nesterov=group["nesterov"],
            )
        return loss


def adamp(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    foreach: bool | None = None,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    delta: float,
    wd_ratio: float,
    nesterov: bool,
) -> None:
    """Functional AdamP (see :class:`AdamP`). ``state_steps`` holds each parameter's step number *including*
    this step (1 on the first call); the moments are updated in place."""
    func = _single_tensor_adamp if foreach is False else _multi_tensor_adamp
    func(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        state_steps,
        lr=lr,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        weight_decay=weight_decay,
        delta=delta,
        wd_ratio=wd_ratio,
        nesterov=nesterov,
    )


def _single_tensor_adamp(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    delta: float,
    wd_ratio: float,
    nesterov: bool,
) -> None:
    # weights with ndim > 1 are stepped at the end, together: their projection needs a few numbers per row
    # of every weight, decided in one batch; everything element-wise is done tensor by tensor
    matrices: dict[float, tuple[list[Tensor], list[Tensor], list[Tensor]]] = {}
    decay = lr * weight_decay
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, state_steps):
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # m / (sqrt(v) / sqrt(bc2) + eps) = sqrt(bc2) * m / (sqrt(v) + eps * sqrt(bc2)): sqrt(bc2) moves into
        # the step size, which saves a pass over the tensor
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        denom = exp_avg_sq.sqrt().add_(eps * bias_correction2_sqrt)
        numerator = exp_avg.lerp(grad, 1 - beta1) if nesterov else exp_avg
        step_size = lr * bias_correction2_sqrt / (1 - beta1**step)
        if _is_matrix(param):
            batch = matrices.setdefault(step_size, ([], [], []))
            for lst, x in zip(batch, (param, grad, numerator / denom)):
                lst.append(x)
        else:
            if decay != 0.0:
                param.mul_(1 - decay)
            param.addcdiv_(numerator, denom, value=-step_size)
    for step_size, (ws, gs, us) in matrices.items():
        for (w, g, u), _ in _batches([ws, gs, us]):
            _step_matrices(w, g, u, step_size=step_size, decay=decay, delta=delta, wd_ratio=wd_ratio, eps=eps)


def _multi_tensor_adamp(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    state_steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    delta: float,
    wd_ratio: float,
    nesterov: bool,
) -> None:
    # one batch per (device, dtype, step): the bias corrections are then plain scalars
    for (ps, gs, ms, vs), step in _batches([params, grads, exp_avgs, exp_avg_sqs], state_steps):
        torch._foreach_lerp_(ms, gs, 1 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
        bias_correction2_sqrt = math.sqrt(1 - beta2**step)
        denoms = torch._foreach_sqrt(vs)
        torch._foreach_add_(denoms, eps * bias_correction2_sqrt)
        numerators = torch._foreach_lerp(ms, gs, 1 - beta1) if nesterov else ms
        step_size = lr * bias_correction2_sqrt / (1 - beta1**step)
        decay = lr * weight_decay
        (mat_p, mat_g, mat_n, mat_d), (vec_p, _, vec_n, vec_d) = _split(
            [_is_matrix(p) for p in ps], ps, gs, list(numerators), denoms
        )
        if mat_p:
            _step_matrices(
                mat_p,
                mat_g,
                list(torch._foreach_div(mat_n, mat_d)),
                step_size=step_size,
                decay=decay,
                delta=delta,
                wd_ratio=wd_ratio,
                eps=eps,
            )
        if vec_p:
            if decay != 0.0:
                torch._foreach_mul_(vec_p, 1 - decay)
            torch._foreach_addcdiv_(vec_p, vec_n, vec_d, value=-step_size)


# --------------------------------------------------------------------------------------------------- SGDP


class SGDP(torch.optim.Optimizer):
    r"""SGD (with momentum) with the radial component of the update removed on scale-invariant weights.

    .. math::
        \begin{aligned}
        &\textbf{input}: \gamma \text{ (lr)}, \mu \text{ (momentum)}, \tau \text{ (dampening)},
            \lambda \text{ (weight\_decay)}, \epsilon \text{ (eps)}, \delta \text{ (delta)},
            \rho \text{ (wd\_ratio)} \\
        &b_0 \leftarrow 0 \\
        &\textbf{for}\ t = 1, 2, \ldots \\
        &\quad g_t \leftarrow \nabla_\theta f_t(\theta_{t-1}) \\
        &\quad b_t \leftarrow \mu b_{t-1} + (1 - \tau) g_t \\
        &\quad u_t \leftarrow b_t \quad (\textit{nesterov}: u_t \leftarrow g_t + \mu b_t) \\
        &\quad r \leftarrow 1 \\
        &\quad \textbf{if}\ \theta \text{ has ndim} > 1 \textbf{ and } \text{for a view } V \text{ (rows, then the
               whole tensor)}\ \max_{i \in V} |\cos(g_{t,i}, \theta_{t-1,i})| < \delta / \sqrt{\dim V} \\
        &\quad\quad \hat\theta_i \leftarrow \theta_{t-1,i} / (\|\theta_{t-1,i}\| + \epsilon), \quad
               u_{t,i} \leftarrow u_{t,i} - \hat\theta_i \langle \hat\theta_i, u_{t,i} \rangle, \quad
               r \leftarrow \rho \\
        &\quad \theta_t \leftarrow \theta_{t-1} \Big(1 - \frac{\gamma \lambda r}{1 - \mu}\Big) - \gamma u_t
        \end{aligned}

    with :math:`\cos(x, y) = \langle x, y\rangle / (\max(\|x\|, \epsilon)\max(\|y\|, \epsilon))` and the views of
    :class:`AdamP` (rows along the first dimension first, then the whole tensor). 1-D parameters always get
    the plain update with :math:`r = 1`. The buffer :math:`b_t` itself is never projected.

    From Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights",
    ICLR 2021, https://arxiv.org/abs/2006.08217 (Algorithm 1), with the detection rule, the views, the
    :math:`\epsilon` placements and the weight decay of the authors' code (clovaai/AdamP, ``adamp/sgdp.py``).

    Args:
        params: parameters or param groups.
        lr: learning rate :math:`\gamma` (default 1e-2: the reference has no default; this is our choice).
        momentum: :math:`\mu` (default 0).
        dampening: :math:`\tau` (default 0).
        weight_decay: decoupled weight decay :math:`\lambda` (default 0).
        nesterov: use Nesterov momentum (default False).
        eps: :math:`\epsilon` of the cosine and of the normalisation of :math:`\hat\theta` (default 1e-8).
        delta: threshold :math:`\delta` of the cosine test (default 0.1).
        wd_ratio: factor :math:`\rho` of the weight decay on projected weights (default 0.1).
        foreach: multi-tensor (``True``/``None``, default) or tensor-by-tensor (``False``) element-wise work; as
            in :class:`AdamP`, the projection of all weights is decided in one batch either way.

    .. warning::
        Readings of the reference and differences with the other libraries:

        * The momentum buffer is not projected: the paper (Algorithm 1) projects the update
          :math:`q_t = \Pi(v_t)` and keeps :math:`p_t` (our :math:`b_t`) as is, and so does pytorch-optimizer.
          With ``nesterov=False`` the authors' code and torch-optimizer alias the update to the buffer
          (``d_p = buf``) and project it in place, so their buffer loses its radial part too; their
          trajectories differ from ours (and the paper's) whenever ``momentum > 0`` and a weight is projected.
        * Weight decay is decoupled, multiplicative and divided by :math:`1 - \mu`, as in the reference
          (the heavy-ball step is :math:`\gamma/(1-\mu)` in the long run).
        * Unlike ``torch.optim.SGD``, the buffer starts at zero and the dampening applies from the first step
          (reference behaviour), also when ``momentum=0`` (the update is then :math:`(1-\tau) g_t`, or
          :math:`g_t` with ``nesterov=True``). ``nesterov=True`` is not rejected when ``momentum=0`` or
          ``dampening > 0`` (the reference accepts it too). The buffer is kept only when ``momentum > 0``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from skopt_nn.optim._adamp import SGDP
        >>> model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
        >>> opt = SGDP(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        >>> loss = model(torch.randn(16, 4)).pow(2).mean()
        >>> loss.backward()
        >>> opt.step()
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        eps: float = 1e-8,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
        *,
        foreach: bool | None = None,
    ) -> None:
        name = type(self).__name__
        defaults = {
            "lr": check_float(lr, "lr", name, _NON_NEGATIVE),
            "momentum": check_float(momentum, "momentum", name, _UNIT_OPEN_RIGHT),
            "dampening": check_float(dampening, "dampening", name, _UNIT_CLOSED),
            "weight_decay": check_float(weight_decay, "weight_decay", name, _NON_NEGATIVE),
            "nesterov": check_bool(nesterov, "nesterov", name),
            "eps": check_float(eps, "eps", name, _NON_NEGATIVE),
            "delta": check_float(delta, "delta", name, _NON_NEGATIVE),
            "wd_ratio": check_float(wd_ratio, "wd_ratio", name, _UNIT_CLOSED),
            "foreach": check_option(foreach, "foreach", name, (None, False, True)),
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("foreach", None)

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        momentum_buffers: list[Tensor | None],
    ) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            state = self.state[p]
            if not state:
                _check_real(p, type(self).__name__)
            if group["momentum"] != 0 and "momentum_buffer" not in state:
                # heavy-ball buffer b_t, starting at zero (reference behaviour)
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            momentum_buffers.append(state.get("momentum_buffer"))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform one optimization step; ``closure`` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            momentum_buffers: list[Tensor | None] = []
            self._init_group(group, params, grads, momentum_buffers)
            if not params:
                continue
            sgdp(
                params,
                grads,
                momentum_buffers,
                foreach=group["foreach"],
                lr=group["lr"],
                momentum=group["momentum"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                eps=group["eps"],
                delta=group["delta"],
                wd_ratio=group["wd_ratio"],
            )
        return loss


def sgdp(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    foreach: bool | None = None,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    eps: float,
    delta: float,
    wd_ratio: float,
) -> None:
    """Functional SGDP (see :class:`SGDP`). ``momentum_buffers`` holds zero-initialised buffers (updated in
    place) when ``momentum > 0``, and may hold ``None`` otherwise."""
    func = _single_tensor_sgdp if foreach is False else _multi_tensor_sgdp
    func(
        params,
        grads,
        momentum_buffers,
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        eps=eps,
        delta=delta,
        wd_ratio=wd_ratio,
    )


def _buffer(buf: Tensor | None) -> Tensor:
    if buf is None:
        raise ValueError("SGDP with momentum > 0 needs a momentum buffer for every parameter")
    return buf


def _sgdp_decay(lr: float, weight_decay: float, momentum: float) -> float:
    # the reference divides the decoupled decay by 1 - momentum
    return lr * weight_decay / (1 - momentum)


def _single_tensor_sgdp(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    eps: float,
    delta: float,
    wd_ratio: float,
) -> None:
    decay = _sgdp_decay(lr, weight_decay, momentum)
    # weights with ndim > 1 are stepped at the end, together (see _single_tensor_adamp)
    ws: list[Tensor] = []
    gs: list[Tensor] = []
    us: list[Tensor] = []
    for param, grad, buf in zip(params, grads, momentum_buffers):
        if momentum != 0:
            buf = _buffer(buf)
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
            update = grad.add(buf, alpha=momentum) if nesterov else buf
        else:
            update = grad if nesterov or dampening == 0 else grad.mul(1 - dampening)
        # ``update`` may be the buffer or the gradient itself: it is only read from here on
        if _is_matrix(param):
            ws.append(param)
            gs.append(grad)
            us.append(update)
        else:
            if decay != 0.0:
                param.mul_(1 - decay)
            param.add_(update, alpha=-lr)
    if ws:
        for (w, g, u), _ in _batches([ws, gs, us]):
            _step_matrices(w, g, u, step_size=lr, decay=decay, delta=delta, wd_ratio=wd_ratio, eps=eps)


def _multi_tensor_sgdp(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    eps: float,
    delta: float,
    wd_ratio: float,
) -> None:
    decay = _sgdp_decay(lr, weight_decay, momentum)
    for (ps, gs, bufs), _ in _batches([params, grads, momentum_buffers]):
        updates: Sequence[Tensor]
        if momentum != 0:
            buffers = [_buffer(b) for b in bufs]
            torch._foreach_mul_(buffers, momentum)
            torch._foreach_add_(buffers, gs, alpha=1 - dampening)
            updates = torch._foreach_add(gs, buffers, alpha=momentum) if nesterov else buffers
        else:
            updates = gs if nesterov or dampening == 0 else torch._foreach_mul(gs, 1 - dampening)
        (mat_p, mat_g, mat_u), (vec_p, _, vec_u) = _split([_is_matrix(p) for p in ps], ps, gs, list(updates))
        if mat_p:
            _step_matrices(mat_p, mat_g, mat_u, step_size=lr, decay=decay, delta=delta, wd_ratio=wd_ratio, eps=eps)
        if vec_p:
            if decay != 0.0:
                torch._foreach_mul_(vec_p, 1 - decay)
            torch._foreach_add_(vec_p, vec_u, alpha=-lr)


# --------------------------------------------------------------------------------------------------- registry


def _adamp_space() -> Mapping[str, Dimension]:
    return {
        "optimizer__lr": Float(1e-5, 1e-1, log=True),
        "optimizer__betas": Tuple((OneMinusLog(0.5, 0.99), OneMinusLog(0.9, 0.9999))),
        "optimizer__weight_decay": Float(1e-5, 1e-1, log=True),
    }


def _sgdp_space() -> Mapping[str, Dimension]:
    return {
        "optimizer__lr": Float(1e-4, 1.0, log=True),
        "optimizer__momentum": OneMinusLog(0.0, 0.99),
        "optimizer__nesterov": Categorical((False, True)),
        "optimizer__weight_decay": Float(1e-6, 1e-2, log=True),
    }


def _error(owner: str, name: str, expected: str, value: Any, **extra: Any) -> ErrorInput:
    return ErrorInput(
        {name: value, **extra},
        ValueError,
        invalid_param_message(name, owner, expected, value),
    )


_NN = "a float in the range [0.0, inf)"
_UNIT = "a float in the range [0.0, 1.0]"

register(
    OptimizerSpec(
        name="adamp",
        optimizer=AdamP,
        paper=_PAPER,
        url=_URL,
        family="adam-like",
        summary=(
            "Adam that removes the radial part of the update (and scales weight decay by wd_ratio) on "
            "scale-invariant weights, e.g. layers followed by BatchNorm/LayerNorm; use it instead of AdamW "
            "on normalized networks to keep effective step sizes from collapsing."
        ),
        supports_foreach=True,
        search_space=_adamp_space,
        sample_kwargs={"lr": 0.01},
        error_inputs=(
            _error("AdamP", "lr", _NN, -1.0),
            _error("AdamP", "betas", "a pair of floats in the range [0.0, 1.0)", (1.0, 0.9)),
            _error("AdamP", "eps", _NN, -1.0),
            _error("AdamP", "weight_decay", _NN, -0.1),
            _error("AdamP", "delta", _NN, -0.1),
            _error("AdamP", "wd_ratio", _UNIT, 1.5),
            _error("AdamP", "nesterov", "a bool", 1),
            _error("AdamP", "foreach", "one of {None, False, True}", "yes"),
        ),
        # measured (float64): the quadratic is within 1e-6 from step 267 on; Rosenbrock within 1e-2 from step
        # 3790 on (a constant-step Adam keeps oscillating around 1e-3..1e-2 there for thousands of steps)
        quadratic=ConvergenceCase({"lr": 0.05}, steps=450, tol=1e-6),
        rosenbrock=ConvergenceCase({"lr": 0.01}, steps=6500, tol=1e-2),
    )
)

register(
    OptimizerSpec(
        name="sgdp",
        optimizer=SGDP,
        paper=_PAPER,
        url=_URL,
        family="sgd",
        summary=(
            "SGD with (Nesterov) momentum that removes the radial part of the update (and scales weight decay "
            "by wd_ratio) on scale-invariant weights, e.g. conv/linear layers followed by BatchNorm; a drop-in "
            "for momentum SGD on normalized networks."
        ),
        supports_foreach=True,
        search_space=_sgdp_space,
        sample_kwargs={"lr": 0.05, "momentum": 0.9},
        error_inputs=(
            _error("SGDP", "lr", _NN, -1.0),
            _error("SGDP", "momentum", "a float in the range [0.0, 1.0)", 1.0),
            _error("SGDP", "dampening", _UNIT, -0.5),
            _error("SGDP", "weight_decay", _NN, -0.1),
            _error("SGDP", "nesterov", "a bool", "no"),
            _error("SGDP", "eps", _NN, -1.0),
            _error("SGDP", "delta", _NN, -0.1),
            _error("SGDP", "wd_ratio", _UNIT, -0.1),
            _error("SGDP", "foreach", "one of {None, False, True}", 0),
        ),
        # measured (float64): within 1e-6 of the minimiser from step 269 (quadratic) and 1655 (Rosenbrock) on
        quadratic=ConvergenceCase({"lr": 0.05, "momentum": 0.9}, steps=450, tol=1e-6),
        rosenbrock=ConvergenceCase({"lr": 2e-3, "momentum": 0.9}, steps=2800, tol=1e-6),
    )
)
