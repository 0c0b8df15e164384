"""The counts the database keeps about items (see loupe.counters)."""

from loupe.counters import Counter, Key

ITEM_STATES = Counter(
    name="loupe_item_states",
    source="datasets_item",
    table="datasets_itemstatecount",
    keys=(Key("project_id", "{r}.project_id"), Key("state", "{r}.state")),
)
