"""The bulk (vectorised) readings of dates and NHS numbers give what one-by-one reading gives."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from care_etl.standardise import clean_dates, clean_nhs_number
from care_etl.standardise._series import map_unique
from care_etl.standardise.dates import _date_cleaner
from care_etl.standardise.identifiers import _clean_nhs_value

TODAY = dt.date(2026, 3, 1)
DATES = [
    "03/07/1948", "29/02/2024", "29/02/2023", "31/04/1990", "00/01/1990", "01/13/1990",
    "01/01/0000", "01/01/0500", "31/12/1889", "01/01/1890", "01/03/2026", "02/03/2026",
    "1948-07-03", "2024-02-29", "2023-02-29", "1948-07-03 00:00:00", "1948-07-03 25:99:99",
    "1948-07-03T00:00:00", "9999-12-31", " 03/07/1948", "3/7/1948", "03-07-1948", "03/07/48",
    "1948/07/03", "O3/07/1948", "٠٣/٠٧/١٩٤٨", "45000", "1948", "", None, 1.5,
    dt.date(1950, 1, 2), pd.Timestamp("1960-05-06"),
]  # fmt: skip


@pytest.mark.parametrize("formats", [None, ["%d/%m/%Y"], ["%Y-%m-%d", "%d/%m/%Y"], ["%m/%d/%Y"]])
def test_bulk_dates_equal_one_by_one(formats) -> None:
    values = pd.Series(DATES, dtype=object)
    bulk = clean_dates(values, formats, today=TODAY)
    single = map_unique(values, _date_cleaner(tuple(formats or ()), TODAY), dates=True)
    pd.testing.assert_series_equal(bulk.value, single.value)
    pd.testing.assert_series_equal(bulk.issue, single.issue)


def test_bulk_nhs_numbers_equal_one_by_one() -> None:
    values = pd.Series(
        ["9434765919", "9434765918", "1111111111", "0000000000", "943 476 5919", "94347659I9",
         "943476591", "94347659190", "9434765919.0", " 9434765919", "١٢٣٤٥٦٧٨٩٠", "4010232137",
         "4010232138", "4010232110", "4010232111", "4010232170", "", None, 9434765919],
    )  # fmt: skip
    bulk = clean_nhs_number(values)
    single = map_unique(values, _clean_nhs_value)
    pd.testing.assert_series_equal(bulk.value, single.value)
    pd.testing.assert_series_equal(bulk.issue, single.issue)
