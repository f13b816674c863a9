"""The custom search attributes operators filter on in the Temporal UI.

Registered by the embedded dev server at start (deploy/embedded/temporal.py)
and by the production cluster's setup (deploy/). They hold ids and states
only, never personal data.
"""

from temporalio.common import SearchAttributeKey

TOWN_ID = SearchAttributeKey.for_keyword("TownId")
VILLAGE_ID = SearchAttributeKey.for_keyword("VillageId")
GRID_ID = SearchAttributeKey.for_keyword("GridId")
MICRO_GRID_ID = SearchAttributeKey.for_keyword("MicroGridId")
ERRAND_STATUS = SearchAttributeKey.for_keyword("ErrandStatus")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CASE_CATEGORY = SearchAttributeKey.for_keyword("CaseCategory")
AREA_MODE = SearchAttributeKey.for_keyword("AreaMode")
DUE_TIME = SearchAttributeKey.for_datetime("DueTime")
BREACHED = SearchAttributeKey.for_bool("Breached")
OVERDUE = SearchAttributeKey.for_bool("Overdue")

ALL: list[SearchAttributeKey] = [  # type: ignore[type-arg]
    TOWN_ID,
    VILLAGE_ID,
    GRID_ID,
    MICRO_GRID_ID,
    ERRAND_STATUS,
    CASE_STATUS,
    CASE_CATEGORY,
    AREA_MODE,
    DUE_TIME,
    BREACHED,
    OVERDUE,
]

_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "DATETIME": "Datetime",
    "BOOL": "Bool",
}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    flags = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}",
        ]
    return flags
