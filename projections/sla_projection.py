"""The SLA read models, maintained batch by batch from the event log:

  sla_incident      one row per incident: its facts (folded with every known
                    event), period, and where its outages lie
  sla_clock         one row per incident clock: outcome, shares and the
                    instant from which they are settled (NULL: running)
  sla_period_level  per agreement, period and service level: the running
                    tally (counts and exact share sums) of settled clocks

Every row is a function of the events up to the tracked position only (the
agreement terms and incident streams are read cut at the batch's last
position), so a rebuild from scratch gives the same rows as the live model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ledger.adapters.eventstore import EventStore
from ledger.application.agreements import load_history
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory
from ledger.domain.sla.facts import IncidentFacts, fold_incident
from ledger.domain.sla.period import LevelTally
from projections.sla_rows import (
    CLOCK_COLUMNS,
    ClockRow,
    IncidentRow,
    add_settled,
    clock_rows,
    decode_shares,
    encode_shares,
    incident_row,
    row_columns,
    tally_from_columns,
)
from projections.storage import Tx, chunked, read_position, write_position

NAME = "sla"
TABLES = ("sla_incident", "sla_clock", "sla_period_level")
SCHEMA_KEY, SCHEMA_VERSION = f"{NAME}.schema", 3
INCIDENT_COLUMNS = ("incident_id, agreement_id, period, opened_at, last_position, facts, "
                    "valid_from, outages_from, outages_until, has_claims")


def _chunks(tx: Tx, ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids] if tx.is_postgres else chunked(ids)


class SlaProjection:
    name = NAME

    def __init__(self, store: EventStore, cache_size: int = 20_000) -> None:
        self.store = store
        # Streams of recently touched incidents: most incidents live for
        # hours, so a rebuild finds nearly every earlier event here instead
        # of reading it back. Bounded, so memory does not grow with history.
        self._streams: OrderedDict[str, list[ev.LedgerEvent]] = OrderedDict()
        self._cache_size = cache_size
        self._histories: dict[str, tuple[int, AgreementHistory | None]] = {}
        self._cached_upto = -1  # last position of the batch the caches were filled from

    # -- schema --------------------------------------------------------------
    def create_tables(self, tx: Tx) -> None:
        if read_position(tx, SCHEMA_KEY)[0] != SCHEMA_VERSION:
            # Read models are derived data: a new layout drops the old tables
            # and rebuilds from the log (the events themselves are untouched).
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {tx.table(table)}")
            write_position(tx, NAME, 0, 0)
            write_position(tx, SCHEMA_KEY, SCHEMA_VERSION, 0)
        incident, clock, level = (tx.table(t) for t in TABLES)
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {incident} (incident_id TEXT PRIMARY KEY, "
            "agreement_id TEXT NOT NULL, period TEXT NOT NULL, opened_at BIGINT NOT NULL, "
            "last_position BIGINT NOT NULL, facts TEXT NOT NULL, valid_from BIGINT, "
            "outages_from BIGINT, outages_until BIGINT, has_claims INTEGER NOT NULL DEFAULT 0)")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_outages ON {incident} "
                   "(agreement_id, outages_from)")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_claims ON {incident} "
                   "(agreement_id, period) WHERE has_claims = 1")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {clock} (incident_id TEXT NOT NULL, "
            "level_id TEXT NOT NULL, agreement_id TEXT NOT NULL, period TEXT NOT NULL, "
            "outcome TEXT NOT NULL, settled_from BIGINT, shares TEXT NOT NULL, "
            "base_at BIGINT NOT NULL, flip_at BIGINT, running TEXT, "
            "PRIMARY KEY (incident_id, level_id))")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_period ON {clock} "
                   "(agreement_id, period, base_at)")
        # Running clocks are few: reports and the at-risk list find them
        # without touching the settled ones.
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_open ON {clock} "
                   "(agreement_id, period) WHERE settled_from IS NULL")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {level} (agreement_id TEXT NOT NULL, "
            "period TEXT NOT NULL, level_id TEXT NOT NULL, met BIGINT NOT NULL, "
            "missed BIGINT NOT NULL, pending BIGINT NOT NULL, excused BIGINT NOT NULL, "
            "shares_sum TEXT NOT NULL, PRIMARY KEY (agreement_id, period, level_id))")

    def clear(self, tx: Tx) -> None:
        for table in TABLES:
            tx.execute(f"DELETE FROM {tx.table(table)}")
        self._streams.clear()
        self._histories.clear()

    # -- inputs, cut at the batch's last position ------------------------------
    def history(self, agreement_id: str, upto: int) -> AgreementHistory | None:
        cached = self._histories.get(agreement_id)
        if cached is not None and cached[0] == upto:
            return cached[1]
        history = load_history(self.store, agreement_id, upto)
        self._histories[agreement_id] = (upto, history)
        return history

    def _streams_of(self, touched: dict[str, list[ev.LedgerEvent]],
                    upto: int) -> dict[str, list[ev.LedgerEvent]]:
        """Every known event of each touched incident, up to `upto`."""
        out: dict[str, list[ev.LedgerEvent]] = {}
        missing: dict[str, list[str]] = {}
        for incident_id, new in touched.items():
            cached = self._streams.pop(incident_id, None)
            if cached is not None:
                out[incident_id] = cached + new
            elif new[0].type == "opened":
                out[incident_id] = list(new)  # an opened event is always a stream's first
            else:
                missing.setdefault(new[0].agreement_id, []).append(incident_id)
        for agreement_id, ids in missing.items():
            for chunk in chunked(ids):
                loaded = self.store.read_streams(agreement_id, [f"incident:{i}" for i in chunk], upto)
                for incident_id in chunk:
                    out[incident_id] = loaded.get(f"incident:{incident_id}", [])
        for incident_id, events in out.items():
            self._streams[incident_id] = events
        while len(self._streams) > self._cache_size:
            self._streams.popitem(last=False)
        return out

    # -- the fold ------------------------------------------------------------
    def apply(self, tx: Tx, events: Sequence[ev.LedgerEvent]) -> None:
        if events[0].position != self._cached_upto + 1:
            # Not the batch after the last one seen: a batch was rolled back
            # (and is being retried) or the model is rebuilt. The cached
            # streams may hold events that were never committed.
            self._streams.clear()
        upto = self._cached_upto = events[-1].position
        touched: dict[str, list[ev.LedgerEvent]] = {}
        amended: set[str] = set()
        for event in events:
            if event.incident_id:
                touched.setdefault(event.incident_id, []).append(event)
            elif isinstance(event.payload, ev.AgreementRegistered | ev.AgreementAmended):
                amended.add(event.agreement_id)
        for agreement_id in {e.agreement_id for e in events}:
            self._histories.pop(agreement_id, None)

        facts: dict[str, tuple[IncidentFacts, int]] = {}
        for incident_id, stream in self._streams_of(touched, upto).items():
            self._fold(facts, incident_id, stream, upto)
        # New terms can move the clocks (and the period) of incidents that
        # did not change, and the claim rules read the customer and the
        # dispute window from them: fold those again.
        for agreement_id in sorted(amended):
            ids = [str(r[0]) for r in tx.fetchall(
                f"SELECT incident_id FROM {tx.table('sla_incident')} WHERE agreement_id = ?",
                (agreement_id,)) if str(r[0]) not in facts]
            for chunk in chunked(ids):
                loaded = self.store.read_streams(
                    agreement_id, [f"incident:{i}" for i in chunk], upto)
                for incident_id in chunk:
                    self._fold(facts, incident_id, loaded.get(f"incident:{incident_id}", []),
                               upto)
        if facts:
            self._write(tx, facts, upto)

    def _fold(self, out: dict[str, tuple[IncidentFacts, int]], incident_id: str,
              stream: list[ev.LedgerEvent], upto: int) -> None:
        opened = next((e for e in stream if e.type == "opened"), None)
        if opened is None:
            return
        history = self.history(opened.agreement_id, upto)
        if history is not None:  # incidents are refused without an agreement
            out[incident_id] = (fold_incident(stream, None, history), stream[-1].position)

    def _write(self, tx: Tx, facts: dict[str, tuple[IncidentFacts, int]], upto: int) -> None:
        ids = sorted(facts)
        clock_table = tx.table("sla_clock")
        # Only settled rows are in the tallies, so only they are taken back;
        # shares are decoded only where there are any (missed clocks).
        old: list[ClockRow] = []
        for chunk in _chunks(tx, ids):
            where, params = tx.in_list("incident_id", chunk)
            old += [
                ClockRow(incident_id, level_id, agreement_id, period, outcome, settled_from,
                         decode_shares(shares) if outcome == "missed" else {})
                for incident_id, level_id, agreement_id, period, outcome, settled_from, shares
                in tx.fetchall(
                    f"SELECT incident_id, level_id, agreement_id, period, outcome, settled_from, "
                    f"shares FROM {clock_table} WHERE {where} AND settled_from IS NOT NULL",
                    params)]
        incidents: list[IncidentRow] = []
        new: list[ClockRow] = []
        for incident_id in ids:
            incident_facts, last = facts[incident_id]
            history = self.history(incident_facts.agreement_id, upto)
            if history is None:
                continue  # cannot happen: incidents are refused without an agreement
            incidents.append(incident_row(incident_facts, history, last))
            new += clock_rows(incident_facts, history)

        deltas: dict[tuple[str, str, str], LevelTally] = {}
        add_settled(deltas, old, -1)
        add_settled(deltas, new, +1)
        self._merge_levels(tx, deltas)
        incident_table = tx.table("sla_incident")
        for chunk in _chunks(tx, ids):
            where, params = tx.in_list("incident_id", chunk)
            tx.execute(f"DELETE FROM {clock_table} WHERE {where}", params)
            tx.execute(f"DELETE FROM {incident_table} WHERE {where}", params)
        tx.insert_rows(clock_table, CLOCK_COLUMNS, [row_columns(r) for r in new])
        tx.insert_rows(
            incident_table, INCIDENT_COLUMNS,
            [(r.incident_id, r.agreement_id, r.period, r.opened_at, r.last_position,
              r.facts_json, r.valid_from, r.outages_from, r.outages_until, int(r.has_claims))
             for r in incidents])

    def _merge_levels(self, tx: Tx, deltas: dict[tuple[str, str, str], LevelTally]) -> None:
        table = tx.table("sla_period_level")
        rows: list[tuple[Any, ...]] = []
        for key in sorted(deltas):
            found = tx.fetchall(
                f"SELECT met, missed, pending, excused, shares_sum FROM {table} "
                "WHERE agreement_id = ? AND period = ? AND level_id = ?", key)
            tally = tally_from_columns(*found[0]) if found else LevelTally(keep_ids=False)
            tally.merge(deltas[key])
            counts = tally.counts
            if not any(counts.values()) and not tally.shares_sum:
                # Gone entirely, as if never tallied: a rebuild has no row.
                tx.execute(f"DELETE FROM {table} WHERE agreement_id = ? AND period = ? "
                           "AND level_id = ?", key)
                continue
            rows.append((*key, counts["met"], counts["missed"], counts["pending"],
                         counts["excused"], encode_shares(tally.shares_sum)))
        tx.executemany(
            f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?,?) ON CONFLICT "
            "(agreement_id, period, level_id) DO UPDATE SET met = excluded.met, "
            "missed = excluded.missed, pending = excluded.pending, excused = excluded.excused, "
            "shares_sum = excluded.shares_sum",
            rows)
