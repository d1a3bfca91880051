"""The pure SLA engine (spec sla-semantics.md sections 5-10).

No I/O, no clock, no logging: instants and durations are integer
microseconds, ratios are Fractions, and text appears only in `render`.

Layers, each usable on its own by read models:
  facts        fold an incident's events into IncidentFacts (and a plain dict)
  clocks       response/resolution clocks of one incident at T
  availability scheduled time, downtime and its ownership for one service
  period       period bounds, terms, attainment, period shares
  credits      capped credits and their split between providers
  report       the typed report values, at report precision
  incident_view the typed incident view, at report precision
  render       the JSON shapes (report_json: the period report's, incident_json:
               the incident view's, both ways);
               api: entry points with the knowledge cut
"""

from ledger.domain.sla.api import (
    compute_incident_view,
    compute_period_report,
    cut_events,
    cut_history,
    fold_all,
)
from ledger.domain.sla.availability import AvailabilityResult, evaluate_availability, outage_spans
from ledger.domain.sla.clocks import ClockResult, evaluate_clock, incident_clocks
from ledger.domain.sla.credits import PeriodCredits, compute_credits
from ledger.domain.sla.facts import (
    IncidentFacts,
    charged_custody,
    facts_from_dict,
    facts_to_dict,
    facts_valid_at,
    fold_incident,
)
from ledger.domain.sla.incident_view import IncidentView, incident_view
from ledger.domain.sla.period import (
    PeriodResult,
    evaluate_period,
    period_bounds,
    period_of,
    period_terms,
)
from ledger.domain.sla.report import (
    ClockAtRisk,
    Dispute,
    LevelResult,
    PeriodReport,
    build_period_report,
)
from ledger.domain.sla.report_json import period_report_dict, period_report_from_dict

__all__ = [
    "AvailabilityResult",
    "ClockAtRisk",
    "ClockResult",
    "Dispute",
    "IncidentFacts",
    "IncidentView",
    "LevelResult",
    "PeriodCredits",
    "PeriodReport",
    "PeriodResult",
    "build_period_report",
    "charged_custody",
    "compute_credits",
    "compute_incident_view",
    "compute_period_report",
    "cut_events",
    "cut_history",
    "evaluate_availability",
    "evaluate_clock",
    "evaluate_period",
    "facts_from_dict",
    "facts_to_dict",
    "facts_valid_at",
    "fold_all",
    "fold_incident",
    "incident_clocks",
    "incident_view",
    "outage_spans",
    "period_bounds",
    "period_of",
    "period_report_dict",
    "period_report_from_dict",
    "period_terms",
]
