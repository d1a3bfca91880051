"""The SLA read models, maintained batch by batch from the event log, and
bitemporal: every row carries the ledger positions in which it was current,
[valid_from_position, valid_to_position) (OPEN while it still is). Nothing
is deleted; a superseded row gets its upper bound. "As recorded at P" is
then a range query over the same tables (projections/sla_read_model.py).

  sla_incident      per incident, a version at each of its events (and at an
                    amendment that moves it to another period): its facts
                    folded with every event known at that position, period,
                    and where its outages lie
  sla_clock         per incident clock, a version whenever its inputs change:
                    outcome, shares and the instant from which they are
                    settled (NULL: running)
  sla_period_level  per agreement, period and service level: the tally of
                    settled clocks at each checkpoint (projections/sla_tally.py)

Each version is a function of the events up to its own position only (the
incident's events and the agreement's terms known there), never of how the
log was cut into batches, so a rebuild from scratch gives the same rows as
the live model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.adapters.eventstore import EventStore
from ledger.domain import events as ev
from ledger.domain.agreements import AgreementHistory
from ledger.domain.history import history_from_events
from ledger.domain.sla.api import cut_history
from ledger.domain.sla.facts import fold_incident
from ledger.domain.sla.period import incident_period
from ledger.domain.streams import agreement_stream
from projections.sla_facts_to_rows import (
    CLOCK_COLUMNS,
    ClockRow,
    IncidentRow,
    clock_rows,
    incident_row,
    row_columns,
    row_from_columns,
)
from projections.sla_tally import OPEN, span_class, write_checkpoints
from projections.storage import Tx, chunked, read_position, write_position

NAME = "sla"
TABLES = ("sla_incident", "sla_clock", "sla_period_level")
# 6: incidents keyed by (agreement, incident id): ids are scoped by agreement (reading 28)
SCHEMA_KEY, SCHEMA_VERSION = f"{NAME}.schema", 6
INCIDENT_COLUMNS = ("incident_id, agreement_id, period, opened_at, last_position, facts, "
                    "valid_from, outages_from, outages_until, has_claims")
VERSION_COLUMNS = "valid_from_position, valid_to_position, span_class"
GROUP = 1000  # incidents folded between two round trips


#: An incident in the model: (agreement_id, incident_id).
Key = tuple[str, str]


def _chunks(tx: Tx, ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids] if tx.is_postgres else chunked(ids)


def _where_keys(tx: Tx, keys: Sequence[Key]) -> list[tuple[str, list[Any]]]:
    """WHERE clauses selecting the rows of these incidents, per agreement."""
    by_agreement: dict[str, list[str]] = {}
    for agreement_id, incident_id in keys:
        by_agreement.setdefault(agreement_id, []).append(incident_id)
    out = []
    for agreement_id, ids in sorted(by_agreement.items()):
        for chunk in _chunks(tx, ids):
            where, params = tx.in_list("incident_id", chunk)
            out.append((f"agreement_id = ? AND {where}", [agreement_id, *params]))
    return out


@dataclass
class _Incident:
    """One incident while a batch is applied: its current rows, and the
    versions the batch adds or closes."""

    row: IncidentRow | None = None
    stored_from: int | None = None  # valid_from_position of the stored current row
    row_closed: int | None = None  # where the batch closes that stored row
    clocks: dict[str, ClockRow] = field(default_factory=dict)  # current, by level
    stored_clocks: dict[str, int] = field(default_factory=dict)  # level -> valid_from_position
    clocks_closed: list[tuple[str, int, int]] = field(default_factory=list)  # level, from, to
    new_rows: list[list[Any]] = field(default_factory=list)  # [row, from, to]
    new_clocks: list[list[Any]] = field(default_factory=list)

    def close_row(self, position: int) -> None:
        if self.new_rows:
            self.new_rows[-1][2] = position
        elif self.stored_from is not None:
            self.row_closed = position

    def close_clock(self, level: str, position: int) -> None:
        del self.clocks[level]
        stored = self.stored_clocks.pop(level, None)
        if stored is not None:
            self.clocks_closed.append((level, stored, position))
            return
        for version in reversed(self.new_clocks):
            if version[0].level_id == level and version[2] == OPEN:
                version[2] = position
                return


class SlaProjection:
    name = NAME

    def __init__(self, store: EventStore, cache_size: int = 20_000) -> None:
        self.store = store
        # Streams of recently touched incidents: most incidents live for
        # hours, so a rebuild finds nearly every earlier event here instead
        # of reading it back. Bounded, so memory does not grow with history.
        self._streams: OrderedDict[Key, list[ev.LedgerEvent]] = OrderedDict()
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
        versions = ("valid_from_position BIGINT NOT NULL, valid_to_position BIGINT NOT NULL, "
                    "span_class INTEGER NOT NULL")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {incident} (incident_id TEXT NOT NULL, "
            "agreement_id TEXT NOT NULL, period TEXT NOT NULL, opened_at BIGINT NOT NULL, "
            "last_position BIGINT NOT NULL, facts TEXT NOT NULL, valid_from BIGINT, "
            "outages_from BIGINT, outages_until BIGINT, has_claims INTEGER NOT NULL DEFAULT 0, "
            f"{versions}, "
            "PRIMARY KEY (agreement_id, incident_id, valid_from_position))")
        # Every index leads with equality columns and ranges over one more,
        # so its plan is right without statistics (autovacuum may be off).
        # Outages of the incidents current at a position: at the latest
        # position only the current rows are in the range.
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_outages ON {incident} "
                   "(agreement_id, valid_to_position, outages_from) "
                   "WHERE outages_from IS NOT NULL")
        # Incidents whose facts at a position are newer than the evaluation
        # instant (folded again at T): few unless T is early.
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_live ON {incident} "
                   "(agreement_id, period, valid_from)")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_claims ON {incident} "
                   "(agreement_id, period) WHERE has_claims = 1")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_incident_current ON {incident} "
                   f"(agreement_id, incident_id) WHERE valid_to_position = {OPEN}")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {clock} (incident_id TEXT NOT NULL, "
            "level_id TEXT NOT NULL, agreement_id TEXT NOT NULL, period TEXT NOT NULL, "
            "outcome TEXT NOT NULL, settled_from BIGINT, shares TEXT NOT NULL, "
            "base_at BIGINT NOT NULL, flip_at BIGINT, running TEXT, inputs TEXT NOT NULL, "
            f"{versions}, PRIMARY KEY (agreement_id, incident_id, level_id, valid_from_position))")
        # Versions that began or ended between a checkpoint and a position.
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_from ON {clock} (valid_from_position)")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_to ON {clock} (valid_to_position)")
        # Running clocks current at a position, one bounded range per span class.
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_running ON {clock} "
                   "(agreement_id, period, span_class, valid_from_position) "
                   "WHERE settled_from IS NULL")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_period ON {clock} "
                   "(agreement_id, period, valid_to_position)")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_clock_open ON {clock} (agreement_id) "
                   f"WHERE settled_from IS NULL AND valid_to_position = {OPEN}")
        tx.execute(
            f"CREATE TABLE IF NOT EXISTS {level} (agreement_id TEXT NOT NULL, "
            "period TEXT NOT NULL, level_id TEXT NOT NULL, valid_from_position BIGINT NOT NULL, "
            "valid_to_position BIGINT NOT NULL, met BIGINT NOT NULL, "
            "missed BIGINT NOT NULL, pending BIGINT NOT NULL, excused BIGINT NOT NULL, "
            "shares_sum TEXT NOT NULL, "
            "PRIMARY KEY (agreement_id, period, level_id, valid_from_position))")
        tx.execute(f"CREATE INDEX IF NOT EXISTS sla_period_level_at ON {level} "
                   "(valid_to_position)")

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
        history = history_from_events(
            agreement_id, self.store.load_stream(agreement_stream(agreement_id)), upto)
        self._histories[agreement_id] = (upto, history)
        return history

    def _streams_of(self, touched: dict[Key, list[ev.LedgerEvent]],
                    upto: int) -> dict[Key, list[ev.LedgerEvent]]:
        """Every known event of each touched incident, up to `upto`."""
        out: dict[Key, list[ev.LedgerEvent]] = {}
        missing: dict[str, list[str]] = {}
        for key, new in touched.items():
            cached = self._streams.pop(key, None)
            if cached is not None:
                out[key] = cached + new
            elif new[0].type == "opened":
                out[key] = list(new)  # an opened event is always a stream's first
            else:
                missing.setdefault(key[0], []).append(key[1])
        for agreement_id, ids in missing.items():
            for chunk in chunked(ids):
                loaded = self.store.read_streams(agreement_id, [f"incident:{i}" for i in chunk], upto)
                for incident_id in chunk:
                    out[(agreement_id, incident_id)] = loaded.get(f"incident:{incident_id}", [])
        for key, events in out.items():
            self._streams[key] = events
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
        touched: dict[Key, list[ev.LedgerEvent]] = {}
        amended: dict[str, list[int]] = {}
        for event in events:
            if event.incident_id:
                touched.setdefault((event.agreement_id, event.incident_id), []).append(event)
            elif isinstance(event.payload, ev.AgreementRegistered | ev.AgreementAmended):
                amended.setdefault(event.agreement_id, []).append(event.position)
        for agreement_id in {e.agreement_id for e in events}:
            self._histories.pop(agreement_id, None)

        streams = self._streams_of(touched, upto)
        self._add_amended(tx, amended, streams, upto)
        streams = {i: s for i, s in streams.items() if any(e.type == "opened" for e in s)}
        ids = set(streams)
        cuts: dict[tuple[str, int], AgreementHistory] = {}
        # A group at a time, so the transaction never sits idle for long
        # between statements (PostgreSQL ends one idle past its timeout).
        for group in chunked(sorted(ids), GROUP):
            state = self._current(tx, group)
            for key in group:
                item = state[key]
                stream = streams[key]
                points = {e.position for e in touched.get(key, ())}
                first = min(e.position for e in stream if e.type == "opened")
                agreement_id = stream[0].agreement_id
                points.update(p for p in amended.get(agreement_id, ()) if p > first)
                for position in sorted(points):
                    self._version(item, agreement_id, stream, position, upto, cuts)
            self._write(tx, state)
        write_checkpoints(tx, events[0].position, upto)

    def _add_amended(self, tx: Tx, amended: dict[str, list[int]],
                     streams: dict[Key, list[ev.LedgerEvent]], upto: int) -> None:
        """Adds to `streams` every current incident of an amended agreement.
        New terms can move the clocks (and the period) of incidents that did
        not change, and the claim rules read the customer and the dispute
        window from them: they are folded again at the amendment's position."""
        for agreement_id in sorted(amended):
            others = [str(r[0]) for r in tx.fetchall(
                f"SELECT incident_id FROM {tx.table('sla_incident')} WHERE agreement_id = ? "
                f"AND valid_to_position = {OPEN}", (agreement_id,))
                if (agreement_id, str(r[0])) not in streams]
            for chunk in chunked(others):
                loaded = self.store.read_streams(
                    agreement_id, [f"incident:{i}" for i in chunk], upto)
                streams.update({(agreement_id, i): loaded.get(f"incident:{i}", []) for i in chunk})

    def _current(self, tx: Tx, ids: Sequence[Key]) -> dict[Key, _Incident]:
        """The current rows of the given incidents."""
        state = {i: _Incident() for i in ids}
        incidents, clocks = tx.table("sla_incident"), tx.table("sla_clock")
        for where, params in _where_keys(tx, ids):
            for (incident_id, agreement_id, period, opened_at, last, facts, valid_from,
                 outages_from, outages_until, has_claims, row_from) in tx.fetchall(
                    f"SELECT {INCIDENT_COLUMNS}, valid_from_position FROM {incidents} "
                    f"WHERE {where} AND valid_to_position = {OPEN}", params):
                item = state[(str(agreement_id), str(incident_id))]
                item.row = IncidentRow(str(incident_id), str(agreement_id), str(period),
                                       int(opened_at), int(last), str(facts), valid_from,
                                       outages_from, outages_until, bool(has_claims))
                item.stored_from = int(row_from)
            for *columns, row_from in tx.fetchall(
                    f"SELECT {CLOCK_COLUMNS}, valid_from_position FROM {clocks} "
                    f"WHERE {where} AND valid_to_position = {OPEN}", params):
                row = row_from_columns(columns)
                item = state[(row.agreement_id, row.incident_id)]
                item.clocks[row.level_id] = row
                item.stored_clocks[row.level_id] = int(row_from)
        return state

    def _version(self, item: _Incident, agreement_id: str, stream: list[ev.LedgerEvent],
                 position: int, upto: int, cuts: dict[tuple[str, int], AgreementHistory]) -> None:
        """The incident's rows as recorded at `position` (one of its events,
        or an amendment of its agreement): folded with its events and the
        agreement's terms known there, as a replay cut at `position` is."""
        known = [e for e in stream if e.position <= position]
        if not any(e.type == "opened" for e in known):
            return  # not opened yet at this position
        full = self.history(agreement_id, upto)
        if full is None:
            return  # cannot happen: incidents are refused without an agreement
        count = sum(1 for v in full.versions if v.position <= position)
        history = cuts.get((agreement_id, count))
        if history is None:
            history = cuts[(agreement_id, count)] = cut_history(full, position)
        facts = fold_incident(known, None, history)
        period = incident_period(history, facts.opened_at)
        row = incident_row(facts, history, known[-1].position, period)
        if known[-1].position == position or row != item.row:
            item.close_row(position)
            item.new_rows.append([row, position, OPEN])
            item.row = row
        fresh = {r.level_id: r for r in clock_rows(facts, history, item.clocks, period)}
        for level, old in list(item.clocks.items()):
            if fresh.get(level) is not old:
                item.close_clock(level, position)
        for level, new in fresh.items():
            if level not in item.clocks:
                item.new_clocks.append([new, position, OPEN])
                item.clocks[level] = new

    def _write(self, tx: Tx, state: dict[Key, _Incident]) -> None:
        incidents, clocks = tx.table("sla_incident"), tx.table("sla_clock")
        tx.executemany(
            f"UPDATE {incidents} SET valid_to_position = ?, span_class = ? "
            "WHERE agreement_id = ? AND incident_id = ? AND valid_from_position = ?",
            [(item.row_closed, span_class(item.stored_from, item.row_closed), *key,
              item.stored_from)
             for key, item in state.items()
             if item.row_closed is not None and item.stored_from is not None])
        tx.executemany(
            f"UPDATE {clocks} SET valid_to_position = ?, span_class = ? "
            "WHERE agreement_id = ? AND incident_id = ? AND level_id = ? AND valid_from_position = ?",
            [(to, span_class(start, to), *key, level, start)
             for key, item in state.items() for level, start, to in item.clocks_closed])
        tx.insert_rows(
            clocks, f"{CLOCK_COLUMNS}, {VERSION_COLUMNS}",
            [(*row_columns(row), start, to, span_class(start, to))
             for item in state.values() for row, start, to in item.new_clocks])
        tx.insert_rows(
            incidents, f"{INCIDENT_COLUMNS}, {VERSION_COLUMNS}",
            [(r.incident_id, r.agreement_id, r.period, r.opened_at, r.last_position,
              r.facts_json, r.valid_from, r.outages_from, r.outages_until, int(r.has_claims),
              start, to, span_class(start, to))
             for item in state.values() for r, start, to in item.new_rows])
