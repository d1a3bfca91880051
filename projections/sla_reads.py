"""Answers from the SLA read models at their tracked position.

A period report takes the settled clocks from the per-period tally and
evaluates only what is not settled at the evaluation instant T: running
clocks, and settled ones whose incident still had events after T (those are
taken back out of the tally and evaluated from facts folded at T). Every
query runs in one snapshot, so the rows and the position agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ledger.adapters.eventstore import EventStore
from ledger.application.agreements import load_history
from ledger.domain.agreements import AgreementHistory
from ledger.domain.sla.api import cut_history
from ledger.domain.sla.clocks import OUTCOMES
from ledger.domain.sla.facts import IncidentFacts, facts_from_dict, facts_valid_at, fold_incident
from ledger.domain.sla.period import (
    LevelTally,
    evaluate_tallied_period,
    period_disputes,
    period_terms,
    tally_clocks,
)
from ledger.domain.sla.render import period_report
from projections.sla_projection import NAME
from projections.sla_rows import (
    CLOCK_COLUMNS,
    ClockRow,
    RunningClock,
    add_settled,
    row_from_columns,
    tally_from_columns,
)
from projections.storage import ProjectionDatabase, Tx, chunked, read_position


@dataclass(frozen=True, slots=True)
class ModelState:
    position: int
    history: AgreementHistory


CATCH_UP_SECONDS = 5.0


class SlaReadModel:
    def __init__(self, store: EventStore,
                 ready: Callable[[int, float], bool] | None = None) -> None:
        """`ready(position, timeout)` waits until the SLA projection holds
        `position` (the runner's wait_for); None: the caller keeps the model
        up to date itself."""
        self.store = store
        self.db = ProjectionDatabase.of_store(store)
        self._ready = ready

    def caught_up(self) -> bool:
        """Waits (briefly) until the model holds every event stored so far, so
        a client reads its own writes; False if it lags too far for that."""
        return self._ready is None or self._ready(self.store.max_position(), CATCH_UP_SECONDS)

    def position(self) -> int:
        with self.db.transaction(commit=False) as tx:
            return read_position(tx, NAME)[0]

    def history_at(self, agreement_id: str, position: int) -> AgreementHistory | None:
        return load_history(self.store, agreement_id, position)

    def facts_at(self, tx: Tx, rows: Iterable[tuple[Any, ...]], evaluated_at: int,
                 position: int) -> list[IncidentFacts]:
        """Facts exact at T of incidents given as (incident_id, agreement_id,
        facts json) rows; those with events after T are folded again from
        their streams, cut at the model's position."""
        out: list[IncidentFacts] = []
        refold: dict[str, list[str]] = {}
        for incident_id, agreement_id, raw in rows:
            facts = facts_from_dict(json.loads(raw))
            if facts_valid_at(facts, evaluated_at):
                out.append(facts)
            else:
                refold.setdefault(str(agreement_id), []).append(f"incident:{incident_id}")
        for agreement_id, streams in refold.items():
            history = self.history_at(agreement_id, position)
            if history is None:
                continue  # cannot happen: incidents are refused without an agreement
            history = cut_history(history, position)
            for chunk in chunked(streams):
                loaded = self.store.read_streams(agreement_id, chunk, position)
                out += [fold_incident(events, evaluated_at, history)
                        for events in loaded.values()]
        return out

    def period_report(
        self,
        agreement_id: str,
        period: str,
        evaluated_at: int,
        *,
        keep_ids: bool,
        authorize: Callable[[AgreementHistory | None], AgreementHistory],
    ) -> dict[str, Any] | None:
        """The report at the model's position. `authorize` returns the
        history if the caller may see it and raises otherwise (also for an
        unknown agreement). None when the model cannot answer: an agreement
        whose amendments changed its time zone puts incidents in periods the
        per-period tallies do not follow."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            history = authorize(self.history_at(agreement_id, position))
            if len({v.terms.timezone for v in history.versions}) != 1:
                return None
            history = cut_history(history, position)
            _, start, end = period_terms(history, period)
            tallies = self._clock_tallies(tx, history, period, start, end, evaluated_at,
                                          position, keep_ids)
            outage_rows = tx.fetchall(
                f"SELECT incident_id, agreement_id, facts FROM {tx.table('sla_incident')} "
                "WHERE agreement_id = ? AND outages_from IS NOT NULL AND outages_from < ? "
                "AND outages_until > ? AND outages_from < ?",
                (agreement_id, end, start, evaluated_at))
            outage_facts = self.facts_at(tx, outage_rows, evaluated_at, position)
            claim_rows = tx.fetchall(
                f"SELECT incident_id, agreement_id, facts FROM {tx.table('sla_incident')} "
                "WHERE agreement_id = ? AND period = ? AND has_claims = 1 AND opened_at <= ?",
                (agreement_id, period, evaluated_at))
            disputes = period_disputes(self.facts_at(tx, claim_rows, evaluated_at, position),
                                       start, end)
        result = evaluate_tallied_period(history, tallies, outage_facts, period, evaluated_at,
                                         keep_ids, disputes)
        return period_report(result, position, None)

    def _clock_tallies(self, tx: Tx, history: AgreementHistory, period: str, start: int,
                       end: int, t: int, position: int, keep_ids: bool) -> dict[str, LevelTally]:
        clocks, incidents = tx.table("sla_clock"), tx.table("sla_incident")
        agreement_id = history.agreement_id
        keyed = {
            (agreement_id, period, str(level_id)): tally_from_columns(*counts)
            for level_id, *counts in tx.fetchall(
                f"SELECT level_id, met, missed, pending, excused, shares_sum FROM "
                f"{tx.table('sla_period_level')} WHERE agreement_id = ? AND period = ?",
                (agreement_id, period))
        }
        # Incidents with events after T: their rows do not hold at T. Take
        # their settled clocks back out of the tally and fold them again.
        live_ids = sorted({str(r[0]) for r in tx.fetchall(
            f"SELECT DISTINCT incident_id FROM {clocks} WHERE agreement_id = ? AND period = ? "
            "AND base_at > ?", (agreement_id, period, t))})
        taken: list[ClockRow] = []
        for chunk in chunked(live_ids):
            where, params = tx.in_list("incident_id", chunk)
            taken += [row_from_columns(r) for r in tx.fetchall(
                f"SELECT {CLOCK_COLUMNS} FROM {clocks} WHERE {where}", params)]
        add_settled(keyed, taken, -1)
        by_level = {key[2]: tally for key, tally in keyed.items()}
        if keep_ids:
            self._settled_ids(tx, by_level, agreement_id, period, t, set(live_ids))
        # Running clocks in closed form: pending until flip_at, then missed.
        for incident_id, level_id, base_at, flip_at, running in tx.fetchall(
                f"SELECT incident_id, level_id, base_at, flip_at, running FROM {clocks} "
                "WHERE agreement_id = ? AND period = ? AND settled_from IS NULL AND base_at <= ?",
                (agreement_id, period, t)):
            tally = by_level.get(level_id)
            if tally is None:
                tally = by_level[level_id] = LevelTally(keep_ids)
            if flip_at is None or t < flip_at:
                tally.add(incident_id, "pending", {})
            else:
                shares = RunningClock.from_json(running).shares_at(history, level_id, base_at, t)
                tally.add(incident_id, "missed", shares)
        live_rows: list[tuple[Any, ...]] = []
        for chunk in chunked(live_ids):
            where, params = tx.in_list("incident_id", chunk)
            live_rows += tx.fetchall(
                f"SELECT incident_id, agreement_id, facts FROM {incidents} WHERE {where}", params)
        live_facts = self.facts_at(tx, live_rows, t, position)
        tally_clocks(history, live_facts, start, end, t, by_level, keep_ids)
        return by_level

    @staticmethod
    def _settled_ids(tx: Tx, by_level: dict[str, LevelTally], agreement_id: str, period: str,
                     t: int, live: set[str]) -> None:
        """The ids behind the settled counts (only when the caller wants them)."""
        for tally in by_level.values():
            tally.ids = {o: [] for o in OUTCOMES}
        for incident_id, level_id, outcome in tx.fetchall(
                f"SELECT incident_id, level_id, outcome FROM {tx.table('sla_clock')} "
                "WHERE agreement_id = ? AND period = ? AND settled_from IS NOT NULL "
                "AND base_at <= ?",
                (agreement_id, period, t)):
            if incident_id not in live:
                ids = by_level[level_id].ids
                assert ids is not None
                ids[outcome].append(incident_id)

    def incident_facts(self, incident_id: str, evaluated_at: int) -> tuple[int, IncidentFacts] | None:
        """(model position, facts at T) of one incident, or None if unknown."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            rows = tx.fetchall(f"SELECT incident_id, agreement_id, facts FROM "
                               f"{tx.table('sla_incident')} WHERE incident_id = ?", (incident_id,))
            if not rows:
                return None
            return position, self.facts_at(tx, rows, evaluated_at, position)[0]

    def incident_rows(self, agreements: list[str] | None, after: str, opened_from: int | None,
                      opened_to: int | None, limit: int) -> list[tuple[IncidentFacts, int]]:
        """(facts, last position) of incidents in id order after `after`, of
        the given agreements (None: all), opened in [opened_from, opened_to)."""
        if agreements is not None and not agreements:
            return []
        with self.db.snapshot() as tx:
            conditions, params = ["incident_id > ?"], list[Any]([after])
            if agreements is not None:
                where, values = tx.in_list("agreement_id", agreements)
                conditions.append(where)
                params += values
            if opened_from is not None:
                conditions.append("opened_at >= ?")
                params.append(opened_from)
            if opened_to is not None:
                conditions.append("opened_at < ?")
                params.append(opened_to)
            rows = tx.fetchall(
                f"SELECT facts, last_position FROM {tx.table('sla_incident')} "
                f"WHERE {' AND '.join(conditions)} ORDER BY incident_id LIMIT ?",
                [*params, limit])
        return [(facts_from_dict(json.loads(raw)), int(last)) for raw, last in rows]

    def running(self, agreement_id: str | None, evaluated_at: int) -> tuple[int, list[IncidentFacts]]:
        """Facts at T of every incident with a clock still running after its
        last known event (candidates for the at-risk list)."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            sql = (f"SELECT i.incident_id, i.agreement_id, i.facts FROM {tx.table('sla_incident')} i "
                   f"WHERE i.incident_id IN (SELECT c.incident_id FROM {tx.table('sla_clock')} c "
                   "WHERE c.settled_from IS NULL")
            params: tuple[Any, ...] = ()
            if agreement_id is not None:
                sql += " AND c.agreement_id = ?"
                params = (agreement_id,)
            rows = tx.fetchall(sql + ") ORDER BY i.incident_id", params)
            return position, self.facts_at(tx, rows, evaluated_at, position)

