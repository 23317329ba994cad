"""Who answers for each asset: the engineering team, and for a source its contract's owner."""

from __future__ import annotations

import re

from care_etl.contracts.model import Contract

ENGINEERING = "team:data-engineering"


def contract_owners(contract: Contract) -> list[str]:
    """The contract's owner (an email in `team.members`), then the engineering team."""
    team = contract.document.get("team") or {}
    members = team.get("members") if isinstance(team, dict) else team
    owners = [
        str(m["username"]).strip()
        for m in members or []
        if isinstance(m, dict)
        and str(m.get("role", "")).lower() == "owner"
        and re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(m.get("username", "")).strip())
    ]
    return [*dict.fromkeys(owners), ENGINEERING]
