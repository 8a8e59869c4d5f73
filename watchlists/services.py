"""Writes of watchlists, within the organisation's plan limits; live connections hear of each change.

Every function runs in the organisation's schema, which the request has already set (they refuse
to run in another one), and raises ValidationError with a message for people, keyed by the form
field it is about ("name", "symbols", "symbol"; plan limits carry the codes in PLAN_LIMIT_CODES),
or Watchlist.DoesNotExist for an id that is not a watchlist of this organisation. A refused change
changes nothing. Writes to one watchlist lock its row, so concurrent edits neither lose each other's
symbols nor slip past a limit together.
"""

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower

from billing.limits import PlanLimits, organisation_limits
from core.names import name_clean, save_unique_name
from streaming.services import watchlist_notify_changed
from symbols.selectors import rejection_problems, symbols_validate
from tenants.db import require_schema
from tenants.models import Organisation

from .models import Watchlist

WATCHLIST_LIMIT = "watchlist_limit"
SYMBOL_LIMIT = "symbol_limit"
PLAN_LIMIT_CODES = frozenset({WATCHLIST_LIMIT, SYMBOL_LIMIT})

NAME_MAX_LENGTH = 80
NAME_CONSTRAINT = "watchlist_unique_name"


def watchlist_create(
    *, organisation: Organisation, name: str, created_by_id: int | None = None, symbols: Sequence[str] = ()
) -> Watchlist:
    """A new watchlist, if the plan has room for another one (and for its symbols)."""
    _require_schema(organisation)
    name = _clean_name(name)
    with transaction.atomic():
        limits = _limits_locked(organisation)
        count = Watchlist.objects.count()
        if count >= limits.max_watchlists:
            raise ValidationError(
                f"Watchlist limit reached: the {limits.plan_name} plan allows "
                f"{_count(limits.max_watchlists, 'watchlist')} and {organisation.name} already has {count}. "
                "Delete one, or upgrade your plan for more.",
                code=WATCHLIST_LIMIT,
            )
        _require_name_free(name)
        added = _symbols_to_add(limits=limits, current=[], requested=symbols) if symbols else []
        watchlist = Watchlist(name=name, symbols=added, created_by_id=created_by_id)
        _save(watchlist)
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist.pk)
    return watchlist


def watchlist_rename(*, organisation: Organisation, watchlist_id: int, name: str) -> Watchlist:
    """Give a watchlist a new name (unique in the organisation, ignoring case)."""
    _require_schema(organisation)
    name = _clean_name(name)
    with transaction.atomic():
        watchlist = _locked(watchlist_id)
        if name == watchlist.name:
            return watchlist
        _require_name_free(name, exclude_id=watchlist.pk)
        watchlist.name = name
        _save(watchlist, update_fields=["name", "updated"])
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist.pk)
    return watchlist


def watchlist_delete(*, organisation: Organisation, watchlist_id: int) -> Watchlist:
    """Delete a watchlist (returned without its id); streams that follow it hear that it changed."""
    _require_schema(organisation)
    with transaction.atomic():
        watchlist = _locked(watchlist_id)
        watchlist.delete()
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist_id)
    return watchlist


def watchlist_add_symbols(*, organisation: Organisation, watchlist_id: int, symbols: Sequence[str]) -> Watchlist:
    """Append directory symbols to a watchlist: all of them, or none when any is refused."""
    _require_schema(organisation)
    with transaction.atomic():
        watchlist = _locked(watchlist_id)
        added = _symbols_to_add(limits=organisation_limits(organisation), current=watchlist.symbols, requested=symbols)
        watchlist.symbols = [*watchlist.symbols, *added]
        _save(watchlist, update_fields=["symbols", "updated"])
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist.pk)
    return watchlist


def watchlist_remove_symbol(*, organisation: Organisation, watchlist_id: int, symbol: str) -> Watchlist:
    """Take one symbol out of a watchlist."""
    _require_schema(organisation)
    symbol = symbol.strip().upper()
    with transaction.atomic():
        watchlist = _locked(watchlist_id)
        _require_member(watchlist, symbol)
        watchlist.symbols = [s for s in watchlist.symbols if s != symbol]
        _save(watchlist, update_fields=["symbols", "updated"])
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist.pk)
    return watchlist


def watchlist_reorder(*, organisation: Organisation, watchlist_id: int, symbol: str, position: int) -> Watchlist:
    """Move one symbol to `position` (0 is first; beyond either end means that end), the rest keep their order.

    A move names the symbol rather than sending the whole new order, so it cannot undo a symbol that
    someone else added or removed since the page was loaded.
    """
    _require_schema(organisation)
    symbol = symbol.strip().upper()
    with transaction.atomic():
        watchlist = _locked(watchlist_id)
        _require_member(watchlist, symbol)
        others = [s for s in watchlist.symbols if s != symbol]
        position = min(max(position, 0), len(others))
        reordered = [*others[:position], symbol, *others[position:]]
        if reordered == watchlist.symbols:
            return watchlist
        watchlist.symbols = reordered
        _save(watchlist, update_fields=["symbols", "updated"])
        watchlist_notify_changed(schema_name=organisation.schema_name, watchlist_id=watchlist.pk)
    return watchlist


# -- checks ----------------------------------------------------------------------------------------
def _require_schema(organisation: Organisation) -> None:
    require_schema(organisation.schema_name, what="watchlist")


def _clean_name(name: str) -> str:
    return name_clean(name, thing="watchlist", max_length=NAME_MAX_LENGTH)


def _require_name_free(name: str, *, exclude_id: int | None = None) -> None:
    taken = Watchlist.objects.annotate(lower_name=Lower("name")).filter(lower_name=name.lower())
    if exclude_id is not None:
        taken = taken.exclude(pk=exclude_id)
    if taken.exists():
        raise ValidationError({"name": _name_taken(name)})


def _name_taken(name: str) -> str:
    return f"There is already a watchlist called “{name}”; choose another name."


def _require_member(watchlist: Watchlist, symbol: str) -> None:
    if symbol not in watchlist.symbols:
        raise ValidationError(
            {"symbol": f"{symbol or 'That symbol'} is not in “{watchlist.name}” (any more); nothing was changed."}
        )


def _symbols_to_add(*, limits: PlanLimits, current: Sequence[str], requested: Sequence[str]) -> list[str]:
    """The requested symbols, checked against the directory, the watchlist and the plan."""
    accepted, rejected = symbols_validate(requested)
    problems = rejection_problems(rejected)
    present = [s for s in accepted if s in current]
    if present:
        problems.append(f"Already in this watchlist: {', '.join(present)}.")
    if not problems and not accepted:
        problems.append("Name at least one symbol to add, for example AAPL.")
    if problems:
        raise ValidationError({"symbols": problems})
    room = limits.max_symbols - len(current)
    if len(accepted) > room:
        limit = _count(limits.max_symbols, "symbol")
        detail = (
            f"this watchlist already has {len(current)}. Remove some first"
            if room <= 0
            else f"this watchlist has {len(current)}, so {room} more can be added, not {len(accepted)}. Add fewer"
        )
        raise ValidationError(
            {
                "symbols": ValidationError(
                    f"Symbol limit reached: the {limits.plan_name} plan allows {limit} per watchlist (what one stream "
                    f"can follow) and {detail}, or upgrade your plan for more.",
                    code=SYMBOL_LIMIT,
                )
            }
        )
    return accepted


# -- rows ------------------------------------------------------------------------------------------
def _limits_locked(organisation: Organisation) -> PlanLimits:
    """The organisation's current limits, with its row locked: watchlist creations queue behind each other."""
    locked = Organisation.objects.select_for_update(of=("self",)).select_related("plan").get(pk=organisation.pk)
    return organisation_limits(locked)


def _locked(watchlist_id: int) -> Watchlist:
    return Watchlist.objects.select_for_update().get(pk=watchlist_id)


def _save(watchlist: Watchlist, *, update_fields: list[str] | None = None) -> None:
    save_unique_name(
        watchlist, constraint=NAME_CONSTRAINT, taken=_name_taken(watchlist.name), update_fields=update_fields
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
