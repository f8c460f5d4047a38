"""The demo's synthetic next-day portal changes."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime

from tooling.synthetic.changes import HANDOFFS, NEW_YORK, next_day_changes

DAY = date(2026, 10, 31)


def records() -> list[dict]:
    made = [
        {
            "unique_key": str(i),
            "created_date": f"2026-10-{29 + i % 3}T08:00:00.000",
            "closed_date": "2026-10-30T10:00:00.000" if i % 2 else None,
            "agency": ("NYPD", "HPD", "DOT", "TLC")[i % 4],
        }
        for i in range(4000)
    ]
    return made


def test_changes_are_reproducible_and_stamped_on_the_day():
    first, again = next_day_changes(records(), DAY), next_day_changes(records(), DAY)
    assert first == again
    assert next_day_changes(records(), DAY, seed=1) != first
    opens, closes = datetime(2026, 10, 31, 9, tzinfo=NEW_YORK), datetime(2026, 10, 31, 17, tzinfo=NEW_YORK)
    assert all(opens <= datetime.fromisoformat(u[":updated_at"]) < closes for u in first)
    assert all(u["resolution_action_updated_date"].startswith("2026-10-31T") for u in first)


def test_each_request_changes_once_and_only_if_made_before_the_day():
    source = {r["unique_key"]: r for r in records()}
    updates = next_day_changes(records(), DAY)
    keys = [u["unique_key"] for u in updates]
    assert len(keys) == len(set(keys))
    assert all(source[k]["created_date"] < "2026-10-31" for k in keys)
    kinds = Counter("handoff" if "agency" in u else u["status"] for u in updates)
    assert kinds["Closed"] > 0 and kinds["Open"] > 0 and kinds["handoff"] > 0
    for update in updates:
        before = source[update["unique_key"]]
        if update.get("status") == "Closed":
            assert not before["closed_date"] and update["closed_date"] > before["created_date"]
        elif update.get("status") == "Open":
            assert before["closed_date"] and update["closed_date"] == ""
        else:
            assert not before["closed_date"] and update["agency"] == HANDOFFS[before["agency"]][0]
