"""Per-period tallies of settled clocks as recorded at any ledger position.

Clock rows are versioned by ledger position (a row is current in
[valid_from_position, valid_to_position)). Summing every settled row current
at P would read a whole month of rows, so the tally is kept at checkpoints:
`sla_period_level` holds, for each multiple C of CHECKPOINT, the tally of
the rows current at C (a version row per tally that changed since the
previous checkpoint). The tally at any P is the one at C = P rounded down
to a checkpoint, plus the clock versions that began in (C, P], minus those
that ended there: at most CHECKPOINT events' worth of rows.

Writing a checkpoint and answering a question use the same function
(`tally_at`), so the stored checkpoints are exactly what a reader would
have computed, and they depend only on the clock rows, never on how the
log was cut into batches.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.sla.period import LevelTally
from projections.sla_facts_to_rows import decode_shares, encode_shares, tally_from_columns
from projections.storage import Tx

CHECKPOINT = 4096
OPEN = 2**62  # valid_to_position of a row that is still current
CURRENT_CLASS = 64

Key = tuple[str, str, str]  # agreement, period, level


def span_class(valid_from: int, valid_to: int) -> int:
    """Rows current for between 2**(k-1) and 2**k - 1 positions have class
    k: a row current at P with class k began in (P - 2**k, P], so rows
    current at P are found with one bounded index range per class."""
    return CURRENT_CLASS if valid_to >= OPEN else (valid_to - valid_from).bit_length()


def classes_at(position: int) -> list[tuple[int, int, int]]:
    """(lowest class, highest class, lowest valid_from_position) ranges to
    probe for rows current at `position`: one per class while the class
    bounds where its rows begin, then one for every longer class."""
    top = position.bit_length() + 1
    out = [(CURRENT_CLASS, CURRENT_CLASS, 0), (top + 1, CURRENT_CLASS - 1, 0)]
    out += [(k, k, max(position - 2**k + 1, 0)) for k in range(1, top + 1)]
    return out


def checkpoint_of(position: int) -> int:
    return position - position % CHECKPOINT


def _checkpoint_rows(tx: Tx, agreement_id: str | None, period: str | None,
                     at: int) -> dict[Key, LevelTally]:
    where, params = "valid_from_position <= ? AND valid_to_position > ?", list[Any]([at, at])
    if agreement_id is not None:
        where = "agreement_id = ? AND period = ? AND " + where
        params = [agreement_id, period or "", *params]
    return {
        (str(a), str(p), str(level)): tally_from_columns(*counts)
        for a, p, level, *counts in tx.fetchall(
            f"SELECT agreement_id, period, level_id, met, missed, pending, excused, shares_sum "
            f"FROM {tx.table('sla_period_level')} WHERE {where}", params)}


def _changed_rows(tx: Tx, after: int, upto: int, agreement_id: str | None,
                  period: str | None) -> list[tuple[Any, ...]]:
    """Settled clock versions that began or ended in (after, upto]. The
    window is bounded by CHECKPOINT events, so it is found by position alone
    and filtered here: a condition on the agreement as well would tempt a
    planner without statistics to scan the agreement's rows instead."""
    table = tx.table("sla_clock")
    seen: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for column in ("valid_from_position", "valid_to_position"):
        for row in tx.fetchall(
                f"SELECT incident_id, level_id, valid_from_position, valid_to_position, "
                f"agreement_id, period, outcome, shares FROM {table} "
                f"WHERE {column} > ? AND {column} <= ? AND settled_from IS NOT NULL",
                [after, upto]):
            if agreement_id is None or (row[4] == agreement_id and row[5] == period):
                seen[row[:3]] = row
    return list(seen.values())


def tally_at(tx: Tx, position: int, agreement_id: str | None = None,
             period: str | None = None, base: int | None = None) -> dict[Key, LevelTally]:
    """Tallies of the settled clock rows current at `position` (of one
    agreement's period, or every tally that moved since the checkpoint
    `base` when agreement_id is None), from the checkpoint `base` (default:
    the last one at or before `position`)."""
    base = checkpoint_of(position) if base is None else base
    changed = _changed_rows(tx, base, position, agreement_id, period)
    tallies = _checkpoint_rows(tx, agreement_id, period, base)
    if agreement_id is None:
        moved = {(str(r[4]), str(r[5]), str(r[1])) for r in changed}
        tallies = {k: v for k, v in tallies.items() if k in moved}
    for incident_id, level, valid_from, valid_to, agreement, row_period, outcome, shares \
            in changed:
        sign = (valid_from <= position < valid_to) - (valid_from <= base < valid_to)
        if not sign:
            continue
        key = (str(agreement), str(row_period), str(level))
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = LevelTally(keep_ids=False)
        tally.add(str(incident_id), outcome,
                  decode_shares(shares) if outcome == "missed" else {}, sign)
    return tallies


def _empty(tally: LevelTally) -> bool:
    return not any(tally.counts.values()) and not tally.shares_sum


def write_checkpoints(tx: Tx, first: int, last: int) -> None:
    """Stores the tallies at every checkpoint in [first, last] that moved
    since the checkpoint before it (clock rows up to `last` are written)."""
    table = tx.table("sla_period_level")
    for at in range(first + (-first) % CHECKPOINT, last + 1, CHECKPOINT):
        if at == 0:
            continue
        previous = _checkpoint_rows(tx, None, None, at - CHECKPOINT)
        for key, tally in sorted(tally_at(tx, at, base=at - CHECKPOINT).items()):
            before = previous.get(key)
            if before is not None and before.counts == tally.counts \
                    and before.shares_sum == tally.shares_sum:
                continue
            if before is not None:
                tx.execute(f"UPDATE {table} SET valid_to_position = ? WHERE agreement_id = ? "
                           "AND period = ? AND level_id = ? AND valid_to_position = ?",
                           (at, *key, OPEN))
            if not _empty(tally):
                counts = tally.counts
                tx.execute(
                    f"INSERT INTO {table} (agreement_id, period, level_id, valid_from_position, "
                    "valid_to_position, met, missed, pending, excused, shares_sum) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (*key, at, OPEN, counts["met"], counts["missed"], counts["pending"],
                     counts["excused"], encode_shares(tally.shares_sum)))
