"""Real market data shipped with QuantiFy, for notebooks, examples and tests.

Everything here reads files inside the package (``quantify/data/``, with their
attribution in its README); nothing touches the network.

``sample_ticks()``
    The bundled Binance recording that ``quantify replay`` and ``quantify
    demo`` serve: spot BTCUSDT and ETHUSDT, and the USD-M perpetuals of both,
    2024-08-08 around 23:54 to 00:05 UTC, as tick frames per instrument.
"""

from __future__ import annotations

import pandas as pd

from quantify.model.instrument import Instrument
from quantify.venues.binance.recordings import read_trades, sample_files, usdm_sample_files

__all__ = ["sample_ticks"]


def sample_ticks(instruments: str | list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Return the bundled recording's trades, one tick frame per instrument text.

    Parameters
    ----------
    instruments : str or list of str, optional
        Instrument texts to return (``"BTCUSDT"``, ``"binance-usdm:ETHUSDT"``);
        default every instrument of the recording.

    Returns
    -------
    dict of str to DataFrame
        Keyed by the instrument's text; frames have the columns of
        :meth:`quantify.Store.ticks` on a UTC index, sorted by trade id.

    Raises
    ------
    ValueError
        If an instrument is not in the recording (the message lists those that are).
    """
    frames: dict[str, pd.DataFrame] = {}
    for market, paths in (("spot", sample_files()), ("usdm", usdm_sample_files())):
        for path in paths:
            for symbol, frame in read_trades(path).items():
                key = symbol if market == "spot" else f"binance-usdm:{symbol}"
                frames[key] = frame if key not in frames else pd.concat([frames[key], frame])
    if instruments is None:
        return dict(sorted(frames.items()))
    wanted = [instruments] if isinstance(instruments, str) else list(instruments)
    keys = [Instrument.parse(text).key for text in wanted]
    missing = [text for text, key in zip(wanted, keys) if key not in frames]
    if missing:
        raise ValueError(f"not in the bundled recording: {', '.join(missing)} "
                         f"(it holds {', '.join(sorted(frames))})")
    return {key: frames[key] for key in keys}
