"""Answers from the SLA read models, as recorded at any position P up to
the one they track (the latest knowledge is P = that position).

A period report takes the rows current at P. Every incident of the period
is counted one way or the other, by construction: if its facts at P are
exact at the evaluation instant T (its last known event happened by T), its
clock rows answer (settled ones through the tally, running ones in closed
form); otherwise it is folded again at T from its events cut at P, and its
settled rows are taken back out of the tally. Which incidents are folded
again is decided from the incident rows, never from clock rows, so an
incident whose clocks are gone at P (its priority now has no levels, a
retraction removed them) is still counted at a T where it had them. Every
query runs in one snapshot, so the rows and the position agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ledger.adapters.eventstore import EventStore
from ledger.domain.agreements import AgreementHistory
from ledger.domain.history import history_from_events
from ledger.domain.sla.api import asked_cut, cut_history
from ledger.domain.sla.clocks import OUTCOMES, Outcome
from ledger.domain.sla.facts import IncidentFacts, facts_from_dict, facts_valid_at, fold_incident
from ledger.domain.sla.period import (
    LevelTally,
    evaluate_tallied_period,
    period_disputes,
    period_terms,
    tally_clocks,
)
from ledger.domain.sla.report import PeriodReport, build_period_report
from ledger.domain.streams import agreement_stream
from projections.sla_facts_to_rows import (
    CLOCK_COLUMNS,
    ClockRow,
    RunningClock,
    add_settled,
    row_from_columns,
)
from projections.sla_projection import NAME
from projections.sla_tally import OPEN, classes_at, tally_at
from projections.storage import ProjectionDatabase, Tx, chunked, read_position

CURRENT_AT = "valid_from_position <= ? AND valid_to_position > ?"


def _by_ids(tx: Tx, select: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Every version of the given incidents' rows; the caller picks those
    current at its position. Without statistics PostgreSQL plans both
    `incident_id = ANY(...)` next to a position range and a plain join with
    the id list as scans of the whole table (a million rows here); a
    lateral subquery per id can only be an index look-up."""
    if tx.is_postgres:
        return tx.fetchall(f"SELECT x.* FROM unnest(?::text[]) AS u(id) CROSS JOIN LATERAL "
                           f"({select} WHERE incident_id = u.id OFFSET 0) x", [list(ids)])
    where, params = tx.in_list("incident_id", ids)
    return tx.fetchall(f"{select} WHERE {where}", params)


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

    def holds(self, position: int) -> bool:
        """Waits (briefly) until the model has applied `position`, so it can
        answer as recorded there; False if it lags too far for that."""
        return self._ready is None or self._ready(position, CATCH_UP_SECONDS)

    def position(self) -> int:
        with self.db.transaction(commit=False) as tx:
            return read_position(tx, NAME)[0]

    def history_at(self, agreement_id: str, position: int) -> AgreementHistory | None:
        return history_from_events(
            agreement_id, self.store.load_stream(agreement_stream(agreement_id)), position)

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
        position: int | None = None,
        as_recorded_at: int | str | None = None,
    ) -> PeriodReport | None:
        """The report as recorded at `position` (None: the model's own
        position). `authorize` returns the history if the caller may see it
        and raises otherwise (also for an unknown agreement). None when the
        model cannot answer: it has not applied `position` yet, or the
        agreement's amendments changed its time zone (incidents then move
        between periods the tallies do not follow)."""
        with self.db.snapshot() as tx:
            held = read_position(tx, NAME)[0]
            at = held if position is None else position
            if at > held:
                return None
            history = authorize(self.history_at(agreement_id, at))
            if len({v.terms.timezone for v in history.versions}) != 1:
                return None
            history = cut_history(history, at)
            _, start, end = period_terms(history, period)
            tallies = self._clock_tallies(tx, history, period, start, end, evaluated_at,
                                          at, keep_ids)
            outage_rows = tx.fetchall(
                f"SELECT incident_id, agreement_id, facts FROM {tx.table('sla_incident')} "
                "WHERE agreement_id = ? AND valid_to_position > ? AND outages_from IS NOT NULL "
                "AND outages_from < ? AND outages_until > ? AND outages_from < ? "
                "AND valid_from_position <= ?",
                (agreement_id, at, end, start, evaluated_at, at))
            outage_facts = self.facts_at(tx, outage_rows, evaluated_at, at)
            claim_rows = tx.fetchall(
                f"SELECT incident_id, agreement_id, facts FROM {tx.table('sla_incident')} "
                "WHERE agreement_id = ? AND period = ? AND has_claims = 1 AND opened_at <= ? "
                f"AND {CURRENT_AT}",
                (agreement_id, period, evaluated_at, at, at))
            disputes = period_disputes(self.facts_at(tx, claim_rows, evaluated_at, at),
                                       start, end)
        result = evaluate_tallied_period(history, tallies, outage_facts, period, evaluated_at,
                                         keep_ids, disputes)
        return build_period_report(result, at, *asked_cut(as_recorded_at))

    def _clock_tallies(self, tx: Tx, history: AgreementHistory, period: str, start: int,
                       end: int, t: int, position: int, keep_ids: bool) -> dict[str, LevelTally]:
        clocks, incidents = tx.table("sla_clock"), tx.table("sla_incident")
        agreement_id = history.agreement_id
        keyed = tally_at(tx, position, agreement_id, period)
        # Incidents whose facts at P are newer than T: their rows do not hold
        # at T. Take their settled clocks back out of the tally and fold them
        # again, whatever clocks they have at P (maybe none).
        live_rows = tx.fetchall(
            f"SELECT incident_id, agreement_id, facts FROM {incidents} WHERE agreement_id = ? "
            f"AND period = ? AND valid_from > ? AND {CURRENT_AT}",
            (agreement_id, period, t, position, position))
        live_ids = sorted({str(r[0]) for r in live_rows})
        live = set(live_ids)
        taken: list[ClockRow] = []
        for chunk in chunked(live_ids):
            taken += [row_from_columns(r[:-2]) for r in _by_ids(
                tx, f"SELECT {CLOCK_COLUMNS}, valid_from_position, valid_to_position "
                f"FROM {clocks}", chunk)
                if r[2] == agreement_id and r[-2] <= position < r[-1]]
        add_settled(keyed, taken, -1)
        by_level = {key[2]: tally for key, tally in keyed.items()}
        if keep_ids:
            self._settled_ids(tx, by_level, agreement_id, period, position, live)
        # Running clocks in closed form: pending until flip_at, then missed.
        for incident_id, level_id, base_at, flip_at, running in self._running_at(
                tx, agreement_id, period, position):
            if incident_id in live:
                continue
            tally = by_level.get(level_id)
            if tally is None:
                tally = by_level[level_id] = LevelTally(keep_ids)
            if flip_at is None or t < flip_at:
                tally.add(incident_id, "pending", {})
            else:
                shares = RunningClock.from_json(running).shares_at(history, level_id, base_at, t)
                tally.add(incident_id, "missed", shares)
        live_facts = self.facts_at(tx, live_rows, t, position)
        tally_clocks(history, live_facts, start, end, t, by_level, keep_ids)
        return by_level

    def outcome_ids(self, agreement_id: str, period: str, evaluated_at: int, position: int,
                    incidents: set[str]) -> dict[str, dict[str, list[str]]] | None:
        """The outcome at T of each clock of the given incidents that counts in
        the period, as recorded at `position`: level -> outcome -> ids. What
        a restatement compares for the incidents that had events between
        its cuts (no other incident's outcome can move). None if the model
        does not hold `position`."""
        with self.db.snapshot() as tx:
            if read_position(tx, NAME)[0] < position:
                return None
            history = self.history_at(agreement_id, position)
            if history is None:
                return None
            history = cut_history(history, position)
            _, start, end = period_terms(history, period)
            rows: list[tuple[Any, ...]] = []
            clocks: list[tuple[Any, ...]] = []
            for chunk in chunked(sorted(incidents)):
                rows += [r[:4] for r in _by_ids(
                    tx, "SELECT incident_id, agreement_id, facts, valid_from, period, "
                    f"valid_from_position, valid_to_position FROM {tx.table('sla_incident')}",
                    chunk) if r[1] == agreement_id and r[4] == period and r[5] <= position < r[6]]
                clocks += [r[:5] for r in _by_ids(
                    tx, "SELECT incident_id, level_id, outcome, settled_from, flip_at, "
                    f"valid_from_position, valid_to_position FROM {tx.table('sla_clock')}",
                    chunk) if r[5] <= position < r[6]]
            live = [r[:3] for r in rows if r[3] is not None and r[3] > evaluated_at]
            live_ids = {str(r[0]) for r in live}
            counted = {str(r[0]) for r in rows} - live_ids
            tallies: dict[str, LevelTally] = {}
            for incident_id, level_id, settled, settled_from, flip_at in clocks:
                if incident_id not in counted:
                    continue
                outcome: Outcome = settled if settled_from is not None else (
                    "pending" if flip_at is None or evaluated_at < flip_at else "missed")
                tallies.setdefault(level_id, LevelTally()).add(incident_id, outcome, {})
            tally_clocks(history, self.facts_at(tx, live, evaluated_at, position), start, end,
                         evaluated_at, tallies)
        return {level: {o: sorted(ids) for o, ids in (tally.ids or {}).items()}
                for level, tally in tallies.items()}

    @staticmethod
    def _running_at(tx: Tx, agreement_id: str, period: str,
                    position: int) -> list[tuple[Any, ...]]:
        """Running clock rows of the period current at `position`: one
        bounded index range per span class (sla_tally.span_class)."""
        probes, params = [], list[Any]()
        for low, high, lowest in classes_at(position):
            span = "span_class = ?" if low == high else "span_class >= ? AND span_class <= ?"
            probes.append(
                f"SELECT incident_id, level_id, base_at, flip_at, running FROM "
                f"{tx.table('sla_clock')} WHERE settled_from IS NULL AND agreement_id = ? "
                f"AND period = ? AND {span} AND valid_from_position >= ? "
                "AND valid_from_position <= ? AND valid_to_position > ?")
            params += [agreement_id, period, *((low,) if low == high else (low, high)),
                       lowest, position, position]
        return tx.fetchall(" UNION ALL ".join(probes), params)

    @staticmethod
    def _settled_ids(tx: Tx, by_level: dict[str, LevelTally], agreement_id: str, period: str,
                     position: int, live: set[str]) -> None:
        """The ids behind the settled counts (only when the caller wants them)."""
        for tally in by_level.values():
            tally.ids = {o: [] for o in OUTCOMES}
        for incident_id, level_id, outcome in tx.fetchall(
                f"SELECT incident_id, level_id, outcome FROM {tx.table('sla_clock')} "
                "WHERE agreement_id = ? AND period = ? AND valid_to_position > ? "
                "AND valid_from_position <= ? AND settled_from IS NOT NULL",
                (agreement_id, period, position, position)):
            if incident_id not in live:
                ids = by_level[level_id].ids
                assert ids is not None
                ids[outcome].append(incident_id)

    def incident_facts(self, incident_id: str, evaluated_at: int,
                       agreement_id: str) -> tuple[int, IncidentFacts] | None:
        """(model position, facts at T) of one incident, or None if unknown."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            rows = tx.fetchall(f"SELECT incident_id, agreement_id, facts FROM "
                               f"{tx.table('sla_incident')} WHERE agreement_id = ? "
                               f"AND incident_id = ? AND valid_to_position = {OPEN}",
                               (agreement_id, incident_id))
            if not rows:
                return None
            return position, self.facts_at(tx, rows, evaluated_at, position)[0]

    def incident_rows(self, agreements: list[str] | None, after: str, opened_from: int | None,
                      opened_to: int | None, limit: int) -> list[tuple[IncidentFacts, int]]:
        """(facts, last position) of incidents in id order after `after`, of
        the given agreements (None: all), opened in [opened_from, opened_to)."""
        if agreements is not None and not agreements:
            return []
        # `after` is a cursor "incident id<US>agreement": one id may stand in
        # several agreements (reading 28), so pages run in (id, agreement) order.
        incident, _, agreement = after.partition("\x1f")
        with self.db.snapshot() as tx:
            conditions, params = ["(incident_id > ? OR (incident_id = ? AND agreement_id > ?))",
                                  f"valid_to_position = {OPEN}"], list[Any]([incident, incident,
                                                                             agreement])
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
                f"WHERE {' AND '.join(conditions)} ORDER BY incident_id, agreement_id LIMIT ?",
                [*params, limit])
        return [(facts_from_dict(json.loads(raw)), int(last)) for raw, last in rows]

    def claim_facts(self, agreement_id: str, period: str | None,
                    evaluated_at: int) -> tuple[int, list[IncidentFacts]]:
        """(model position, facts at T) of the agreement's incidents that
        have a claim at some instant, opened by T (and in `period`)."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            sql = (f"SELECT incident_id, agreement_id, facts FROM {tx.table('sla_incident')} "
                   "WHERE agreement_id = ? AND has_claims = 1 AND opened_at <= ? "
                   f"AND valid_to_position = {OPEN}")
            params: list[Any] = [agreement_id, evaluated_at]
            if period is not None:
                sql += " AND period = ?"
                params.append(period)
            rows = tx.fetchall(sql + " ORDER BY incident_id", params)
            return position, self.facts_at(tx, rows, evaluated_at, position)

    def running(self, agreement_id: str | None, evaluated_at: int) -> tuple[int, list[IncidentFacts]]:
        """Facts at T of every incident with a clock still running after its
        last known event (candidates for the at-risk list)."""
        with self.db.snapshot() as tx:
            position = read_position(tx, NAME)[0]
            sql = (f"SELECT i.incident_id, i.agreement_id, i.facts FROM {tx.table('sla_incident')} i "
                   f"WHERE (i.agreement_id, i.incident_id) IN (SELECT c.agreement_id, c.incident_id "
                   f"FROM {tx.table('sla_clock')} c "
                   f"WHERE c.settled_from IS NULL AND c.valid_to_position = {OPEN}")
            params: tuple[Any, ...] = ()
            if agreement_id is not None:
                sql += " AND c.agreement_id = ?"
                params = (agreement_id,)
            rows = tx.fetchall(sql + f") AND i.valid_to_position = {OPEN} ORDER BY i.incident_id",
                               params)
            return position, self.facts_at(tx, rows, evaluated_at, position)

