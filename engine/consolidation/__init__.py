"""Consolidation: a cycle's reports become one report, which goes upward; reports that
come after it make a revision. One module per step; this package re-exports what
callers outside engine/ use."""

from engine.consolidation.consolidate import consolidate
from engine.consolidation.follow_up import (
    LATE_NOTICE,
    FollowUp,
    follow_up,
    pending_follow_ups,
    stale_consolidations,
)
from engine.consolidation.result import ConsolidationError, ConsolidationResult

__all__ = [
    "LATE_NOTICE",
    "ConsolidationError",
    "ConsolidationResult",
    "FollowUp",
    "consolidate",
    "follow_up",
    "pending_follow_ups",
    "stale_consolidations",
]
