"""The catalogue of rule ids write-side validation reports (spec sections 4,
10.1-10.7 and 11). The order-dependent rules are applied by the incident
state machine (ledger.domain.incident_state).

Rule ids are API: the gRPC layer returns them to partners, whose systems
branch on them. Never rename or reuse one; add new ones at the end.
"""

from __future__ import annotations

RULES: tuple[tuple[str, str], ...] = (
    ("future_event", "occurred_at is more than the allowed clock skew ahead of the ledger clock"),
    ("incident_voided", "the incident is voided: only a retraction of the void is accepted"),
    ("already_opened", "the incident id is already opened; an incident has exactly one opened"),
    ("wrong_agreement", "the event names another agreement than the incident's"),
    ("before_effective_from", "opened (or maintenance starting) before the agreement is in force"),
    ("unknown_service", "the service is not a service of the agreement"),
    ("custody_not_provider", "opened with an initial custody org that is not a provider"),
    ("not_a_party", "the actor is not a party (customer or provider) of the agreement"),
    ("not_a_provider", "responded or resolved by an org that is not a provider"),
    ("invalid_root_cause", "root cause is not a provider, customer or third_party"),
    ("before_opened", "the event is dated (or recorded) before the incident's opened"),
    ("after_closed", "after closed only root_cause_assigned and retracted are accepted"),
    ("not_custody_holder", "handed_off by an org that does not hold custody at that point"),
    ("invalid_handoff_target", "handed_off to the current holder or to a non-provider"),
    ("no_pending_handoff", "handoff_rejected with no handoff left to reject"),
    ("not_handoff_receiver", "handoff_rejected by an org other than the last handoff's receiver"),
    ("already_paused", "clock_paused while the clock is already paused (no nesting)"),
    ("not_paused", "clock_resumed while the clock is not paused"),
    # No longer raised (10.19: a change to the same priority is accepted and
    # changes nothing); kept because rule ids are never reused.
    ("same_priority", "priority_changed to the priority the incident already has"),
    ("outage_already_open", "outage_started while the incident already has an open outage"),
    ("no_open_outage", "outage_ended while the incident has no open outage"),
    ("already_resolved", "resolved while already resolved (and not reopened since)"),
    ("responded_after_resolved", "responded while resolved and not reopened"),
    ("not_resolved", "reopened or closed while the incident is not resolved"),
    ("outage_open_at_close", "closed while an outage of the incident is still open"),
    ("unknown_target", "retracted names no earlier stored event of this incident"),
    ("cannot_retract_opened", "retracted names the incident's opened (void the incident instead)"),
    ("cannot_retract_retraction", "retracted names a retraction (a correction is never undone)"),
    ("already_retracted", "retracted names an event that is already retracted"),
    ("target_has_dependents", "the timeline without the retracted event would be invalid"),
    ("not_own_event", "retracted names an event of another org: corrections are one's own (11.1)"),
    ("not_a_claim", "an answer names no stored claim of this incident (11.3)"),
    ("not_awaited", "an answer by an org the claim does not await (11.3)"),
    ("already_answered", "the org has already answered this claim: retract that answer first (11.3)"),
    ("dispute_after_deemed", "a dispute dated at or after the claim's deemed instant (11.3)"),
)
RULE_IDS: frozenset[str] = frozenset(rule for rule, _ in RULES)
# Listed for partners that still branch on them, never raised any more.
RETIRED_RULES: frozenset[str] = frozenset({"same_priority"})


