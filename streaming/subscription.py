"""What one connection follows, within its plan: the symbol arithmetic of the websocket (no I/O)."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from billing.limits import PlanLimits
from symbols.selectors import Rejection


@dataclass
class Change:
    """What an edit did: symbols now followed, symbols no longer followed, requests refused."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class Subscription:
    """The connection's symbols in order (an ordered set) and the limits they must fit."""

    def __init__(self, symbols: Iterable[str], limits: PlanLimits) -> None:
        self.symbols: dict[str, None] = dict.fromkeys(symbols)
        self.limits = limits

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols

    def __len__(self) -> int:
        return len(self.symbols)

    def list(self) -> list[str]:
        return list(self.symbols)

    def add(self, accepted: Iterable[str]) -> Change:
        """Follow valid symbols too, as many as the plan has room for; the rest are `symbol_limit`."""
        new = [s for s in dict.fromkeys(accepted) if s not in self.symbols]
        room = max(self.limits.max_symbols - len(self.symbols), 0)
        self.symbols.update(dict.fromkeys(new[:room]))
        return Change(added=new[:room], rejected=[Rejection(s, "symbol_limit") for s in new[room:]])

    def remove(self, raw: Iterable[object]) -> Change:
        """Stop following the named symbols (any case); names not followed are ignored."""
        wanted = {s.strip().upper() for s in raw if isinstance(s, str)}
        removed = [s for s in self.symbols if s in wanted]
        for symbol in removed:
            del self.symbols[symbol]
        return Change(removed=removed)

    def replace(self, accepted: Iterable[str]) -> Change:
        """Follow exactly these symbols (a watchlist was edited), in their order, within the plan."""
        wanted = list(dict.fromkeys(accepted))
        kept, refused = wanted[: self.limits.max_symbols], wanted[self.limits.max_symbols :]
        added = [s for s in kept if s not in self.symbols]
        removed = [s for s in self.symbols if s not in set(kept)]
        self.symbols = dict.fromkeys(kept)
        return Change(added=added, removed=removed, rejected=[Rejection(s, "symbol_limit") for s in refused])

    def limit(self, limits: PlanLimits) -> Change:
        """Apply a new plan: symbols beyond its limit (the last ones added) stop."""
        self.limits = limits
        symbols = list(self.symbols)
        removed = symbols[limits.max_symbols :]
        if removed:
            self.symbols = dict.fromkeys(symbols[: limits.max_symbols])
        return Change(removed=removed)
