"""The PyTorch networks behind :mod:`quantify.analytics.forecast.nets` (imported only when used).

Both read a window of ``lookback`` standardised feature vectors ending at bar
``t`` and emit two numbers: the standardised next return and the logit of an
up move.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

__all__: list[str] = []


class LSTMNet(nn.Module):
    """An LSTM over the window; the last hidden state feeds a linear head of two outputs."""

    def __init__(self, n_features: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class TransformerNet(nn.Module):
    """A small encoder over the window with learned positions; the last position feeds the head."""

    def __init__(self, n_features: int, lookback: int, d_model: int, heads: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, d_model)
        self.position = nn.Parameter(torch.zeros(1, lookback, d_model))
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position)
        return self.head(h[:, -1])


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run torch on ``n`` threads inside the block (``None``: leave as is), then restore."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(
    net: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int, lr: float,
    weight_decay: float, direction_weight: float, seed: int,
) -> nn.Module:
    """Adam on MSE of the standardised return plus ``direction_weight`` times the up/down BCE.

    Rows whose return is exactly zero carry no direction and are left out of the BCE term.
    """
    generator = torch.Generator().manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    up = (yt > 0).float()
    has_sign = (yt != 0).float()
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    bce = nn.BCEWithLogitsLoss(reduction="none")
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator)
        for start in range(0, len(xt), batch_size):
            rows = order[start : start + batch_size]
            out = net(xt[rows])
            loss = torch.mean((out[:, 0] - yt[rows]) ** 2)
            weight = has_sign[rows]
            if direction_weight > 0 and float(weight.sum()) > 0:
                loss = loss + direction_weight * (bce(out[:, 1], up[rows]) * weight).sum() / weight.sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    net.eval()
    return net


def predict(net: nn.Module, x: np.ndarray, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Standardised return and probability of an up move for each window of ``x``."""
    outs = []
    with torch.no_grad():
        xt = torch.as_tensor(x, dtype=torch.float32)
        for start in range(0, len(xt), batch_size):
            outs.append(net(xt[start : start + batch_size]))
    if not outs:
        return np.zeros(0), np.zeros(0)
    out = torch.cat(outs).double()
    return out[:, 0].numpy(), torch.sigmoid(out[:, 1]).numpy()


def seed_everything(seed: int) -> None:
    """Seed torch's global generator, which initialises the networks' weights."""
    torch.manual_seed(seed)
