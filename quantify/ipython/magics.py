"""The ``%quantify`` line magic: thin wrappers over :class:`KernelSession`."""

from __future__ import annotations

import json
import shlex
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from quantify.config import parse_symbols
from quantify.ipython.session import KernelSession
from quantify.model.status import WriterStatus
from quantify.store import open_store

__all__ = ["QuantifyMagics"]

ACTIONS = ("status", "start", "stop", "symbols", "books", "perps", "store")

#: ``%quantify ACTION --help``: the usage line and what the action does.
ACTION_HELP = {
    "status": ("%quantify status [--json]",
               "Show the kernel's mode (writer, reader or stopped) and the writer's status; "
               "--json prints it as JSON."),
    "start": ("%quantify start", "Start streaming into the store, or attach as a reader if "
              "another process already writes it."),
    "stop": ("%quantify stop", "Stop streaming, flushing every trade received."),
    "symbols": ("%quantify symbols [add|remove SYM...]",
                "Show the streamed instruments, or add/remove some (BTCUSDT, binance-usdm:BTCUSDT); "
                "the stream restarts with the new set."),
    "books": ("%quantify books [add|remove INST...]",
              "Show the instruments whose order books are streamed (depth diffs and best bid/offer: "
              "quotes, book checkpoints, the continuity ledger), or add/remove some (streamed "
              "instruments only); the stream restarts with the new set."),
    "perps": ("%quantify perps [add|remove INST...]",
              "Show the instruments whose perpetual-futures data is streamed and polled (mark price, "
              "liquidations, open interest, funding settlements), or add/remove some (streamed USD-M "
              "instruments, binance-usdm:BTCUSDT); the stream restarts with the new set."),
    "store": ("%quantify store [URI]", "Show the store, or switch the stream to the store at URI "
              "(lmdb://PATH, s3://HOST:BUCKET?..., mem://)."),
}


def format_status(status: WriterStatus | None, mode: str) -> str:
    """Human-readable status: the kernel's mode, then :meth:`WriterStatus.summary`."""
    if status is None:
        return f"{mode}: no status published yet"
    return f"{mode} · {status.summary()}"


@magics_class
class QuantifyMagics(Magics):
    """``%quantify``: control this kernel's stream of Binance trades."""

    def __init__(self, shell: Any, session: KernelSession) -> None:
        super().__init__(shell)
        self.session = session

    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=ACTIONS,
              help="status (default) | start | stop | symbols [add|remove SYM...] | "
                   "books [add|remove INST...] | perps [add|remove INST...] | store [URI]")
    @argument("args", nargs="*", help="for symbols: add|remove SYM...; for books and perps: "
                                     "add|remove INST...; for store: a store URI")
    @argument("--json", action="store_true", help="status as JSON")
    @argument("-h", "--help", action="store_true",
              help="show this help (%%quantify ACTION --help: that action's)")
    @line_magic
    def quantify(self, line: str) -> None:
        """Control the kernel's ingestion of Binance trades into the store.

        Examples::

            %quantify                          # status
            %quantify stop
            %quantify symbols add SOLUSDT
            %quantify symbols remove ETHUSDT
            %quantify books add BTCUSDT        # its order book too
            %quantify perps add binance-usdm:BTCUSDT   # mark price, funding, open interest
            %quantify store lmdb:///data/arctic
        """
        # a trailing "# comment" is the reader's, not an argument (IPython passes it on)
        args = parse_argstring(self.quantify, shlex.join(shlex.split(line, comments=True)))
        if args.help:
            print(self._help(args.action if args.action != "status" or "status" in line.split("#")[0].split() else None))
            return
        s = self.session
        if args.action == "status":
            status = s.status()
            if args.json:
                print(json.dumps(None if status is None else status.to_dict(), indent=1, default=str))
            else:
                print(format_status(status, s.mode))
        elif args.action == "start":
            print(s.start())
        elif args.action == "stop":
            print(s.stop())
        elif args.action == "symbols":
            self._symbols(args.args)
        elif args.action == "books":
            self._subset(args.args, "books", "order book",
                         "no order books streamed (%quantify books add BTCUSDT)")
        elif args.action == "perps":
            self._subset(args.args, "perps", "perpetual data",
                         "no perpetual data streamed (%quantify perps add binance-usdm:BTCUSDT)")
        elif args.action == "store":
            if not args.args:
                print(f"{s.store_uri} ({s.mode})")
            else:
                uri = str(open_store(args.args[0], create=True).uri)  # the kernel writes there; validated before anything stops
                print(s.reconfigure(store=uri))

    def _help(self, action: str | None) -> str:
        """The whole magic's help, or one action's (``%quantify ACTION --help``)."""
        if action is None:
            return str(self.quantify.parser.format_help()).rstrip()
        usage, what = ACTION_HELP[action]
        return f"usage: {usage}\n\n{what}"

    def _symbols(self, words: list[str]) -> None:
        s = self.session
        if not words:
            print(", ".join(s.config.symbols))
            return
        verb, names = words[0].lower(), words[1:]
        if verb not in ("add", "remove") or not names:
            raise ValueError("usage: %quantify symbols [add|remove SYM...]")
        syms = parse_symbols(names)
        current = list(s.config.symbols)
        if verb == "add":
            new = current + [x for x in syms if x not in current]
        else:
            missing = [x for x in syms if x not in current]
            if missing:
                raise ValueError(f"not streaming {', '.join(missing)} (streaming {', '.join(current)})")
            new = [x for x in current if x not in syms]
            if not new:
                raise ValueError("cannot remove every symbol; use %quantify stop")
            subsets = {name: tuple(b for b in getattr(s.config, name) if b in new) for name in ("books", "perps")}
            changed = {name: v for name, v in subsets.items() if v != getattr(s.config, name)}
            if changed:
                print(s.reconfigure(symbols=tuple(new), **changed))
                return
        print(s.reconfigure(symbols=tuple(new)))

    def _subset(self, words: list[str], name: str, what: str, none: str) -> None:
        """``%quantify books|perps [add|remove INST...]``: the config's ``name``, a subset of the symbols."""
        s = self.session
        current = list(getattr(s.config, name))
        if not words:
            print(", ".join(current) or none)
            return
        verb, names = words[0].lower(), words[1:]
        if verb not in ("add", "remove") or not names:
            raise ValueError(f"usage: %quantify {name} [add|remove INST...]")
        insts = parse_symbols(names)
        if verb == "add":
            missing = [x for x in insts if x not in s.config.symbols]
            if missing:
                raise ValueError(f"not streaming {', '.join(missing)}: %quantify symbols add {' '.join(missing)} "
                                 "first")
            new = current + [x for x in insts if x not in current]
        else:
            absent = [x for x in insts if x not in current]
            if absent:
                raise ValueError(f"no {what} of {', '.join(absent)} is streamed "
                                 f"({name}: {', '.join(current) or 'none'})")
            new = [x for x in current if x not in insts]
        print(s.reconfigure(**{name: tuple(new)}))


def complete_quantify(session: KernelSession, text: str, line: str) -> list[str]:
    """Completions for ``%quantify``: actions, then symbols."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    if len(words) <= 2:
        return [a for a in ACTIONS if a.startswith(text)]
    if words[1] == "symbols":
        if len(words) == 3:
            return [v for v in ("add", "remove") if v.startswith(text)]
        if words[2] == "remove":
            pool = list(session.config.symbols)
        else:
            try:
                pool = open_store(session.config.store).symbols()
            except Exception:  # noqa: BLE001 - completion must never raise into the shell
                pool = []
            pool = sorted(set(pool) | {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT",
                                       "binance-usdm:BTCUSDT", "binance-usdm:ETHUSDT"})
        return [p for p in pool if p.lower().startswith(text.lower())]
    return []
