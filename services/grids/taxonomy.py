"""The seed's case taxonomy and its published 2022 figures.

A category's group is its value divided by 100 (see CaseCategory in
cases.proto). The codes are the spelling the history import files use.
"""

from cloudark.grids.v1 import cases_pb2 as pb

GROUPS: dict[int, str] = {
    pb.CASE_GROUP_EPIDEMIC: "epidemic",
    pb.CASE_GROUP_SAFETY: "safety",
    pb.CASE_GROUP_FRAUD_PREVENTION: "fraud_prevention",
    pb.CASE_GROUP_OTHER: "other",
}

# Import-file code of every category, in report order.
CATEGORY_CODES: dict[int, str] = {
    pb.CASE_CATEGORY_EPIDEMIC_GATHERING_VENUE: "epidemic.gathering_venue",
    pb.CASE_CATEGORY_EPIDEMIC_SMALL_DOOR: "epidemic.small_door",
    pb.CASE_CATEGORY_EPIDEMIC_OTHER: "epidemic.other",
    pb.CASE_CATEGORY_SAFETY_DISPUTE: "safety.dispute",
    pb.CASE_CATEGORY_SAFETY_FIRE: "safety.fire",
    pb.CASE_CATEGORY_SAFETY_TRAFFIC: "safety.traffic",
    pb.CASE_CATEGORY_SAFETY_WORKPLACE: "safety.workplace",
    pb.CASE_CATEGORY_SAFETY_ILLEGAL_PUBLICATIONS: "safety.illegal_publications",
    pb.CASE_CATEGORY_SAFETY_FOOD_AND_DRUG: "safety.food_and_drug",
    pb.CASE_CATEGORY_SAFETY_PUBLIC_ORDER: "safety.public_order",
    pb.CASE_CATEGORY_SAFETY_CITY_MANAGEMENT: "safety.city_management",
    pb.CASE_CATEGORY_FRAUD_PREVENTION: "fraud_prevention",
    pb.CASE_CATEGORY_OTHER: "other",
}
CATEGORIES_BY_CODE = {code: value for value, code in CATEGORY_CODES.items()}

SOURCE_CODES: dict[int, str] = {
    pb.CASE_SOURCE_PATROL: "patrol",
    pb.CASE_SOURCE_RESIDENT_TIP_OFF: "resident_tip_off",
    pb.CASE_SOURCE_HOTLINE: "hotline",
    pb.CASE_SOURCE_DEPARTMENT: "department",
    pb.CASE_SOURCE_OTHER_SYSTEM: "other_system",
}
SOURCES_BY_CODE = {code: value for value, code in SOURCE_CODES.items()}

PATROL_KIND_CODES: dict[int, str] = {
    pb.PATROL_KIND_PATROL: "patrol",
    pb.PATROL_KIND_HOME_VISIT: "home_visit",
}
PATROL_KINDS_BY_CODE = {code: value for value, code in PATROL_KIND_CODES.items()}


def group_of(category: int) -> int:
    return category // 100


# The seed article's 2022 figures (DOMAIN.md). Each group's "other" is what
# the article's group total leaves after its named sub-categories.
SEED_2022_PATROLS = 300_376
SEED_2022_CASES = 345_628
SEED_2022_CATEGORY_COUNTS: dict[int, int] = {
    pb.CASE_CATEGORY_EPIDEMIC_GATHERING_VENUE: 988,
    pb.CASE_CATEGORY_EPIDEMIC_SMALL_DOOR: 13_554,
    pb.CASE_CATEGORY_EPIDEMIC_OTHER: 80_130 - 988 - 13_554,
    pb.CASE_CATEGORY_SAFETY_DISPUTE: 10_759,
    pb.CASE_CATEGORY_SAFETY_FIRE: 138_194,
    pb.CASE_CATEGORY_SAFETY_TRAFFIC: 4_148,
    pb.CASE_CATEGORY_SAFETY_WORKPLACE: 1_062,
    pb.CASE_CATEGORY_SAFETY_ILLEGAL_PUBLICATIONS: 4_417,
    pb.CASE_CATEGORY_SAFETY_FOOD_AND_DRUG: 10_554,
    pb.CASE_CATEGORY_SAFETY_PUBLIC_ORDER: 2_087,
    pb.CASE_CATEGORY_SAFETY_CITY_MANAGEMENT: 43_638,
    pb.CASE_CATEGORY_FRAUD_PREVENTION: 3_336,
    pb.CASE_CATEGORY_OTHER: 345_628 - 80_130 - 214_859 - 3_336,
}
SEED_2022_GROUP_COUNTS: dict[int, int] = {
    pb.CASE_GROUP_EPIDEMIC: 80_130,
    pb.CASE_GROUP_SAFETY: 214_859,
    pb.CASE_GROUP_FRAUD_PREVENTION: 3_336,
    pb.CASE_GROUP_OTHER: 345_628 - 80_130 - 214_859 - 3_336,
}
