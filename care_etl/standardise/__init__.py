"""Standardisation: pure functions that turn raw text into comparable canonical values.

`standardise` is the stage's entry point; the per-field functions are for linkage, contracts
and tests. Each `clean_*` returns `Cleaned(value, issue)`: clean values and the reason (without
the value) each one was nulled or changed.
"""

from care_etl.standardise._series import Cleaned
from care_etl.standardise.address import address_postcode, clean_address, split_address
from care_etl.standardise.dates import EARLIEST, check_death_after_birth, clean_dates
from care_etl.standardise.frame import standardise
from care_etl.standardise.identifiers import (
    clean_nhs_number,
    clean_ni_number,
    clean_uprn,
    is_valid_nhs_number,
    nhs_check_digit,
)
from care_etl.standardise.names import (
    clean_name,
    clean_other_names,
    clean_title,
    match_key,
    name_case,
    name_sound,
    parse_full_name,
)
from care_etl.standardise.postcode import (
    clean_postcode,
    is_valid_postcode,
    postcode_district,
    postcode_sector,
)
from care_etl.standardise.sex import clean_sex

__all__ = [
    "EARLIEST",
    "Cleaned",
    "address_postcode",
    "check_death_after_birth",
    "clean_address",
    "clean_dates",
    "clean_name",
    "clean_nhs_number",
    "clean_ni_number",
    "clean_other_names",
    "clean_postcode",
    "clean_sex",
    "clean_title",
    "clean_uprn",
    "is_valid_nhs_number",
    "is_valid_postcode",
    "match_key",
    "name_case",
    "name_sound",
    "nhs_check_digit",
    "parse_full_name",
    "postcode_district",
    "postcode_sector",
    "split_address",
    "standardise",
]
