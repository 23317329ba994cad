"""A CSV source the code has never seen reaches the index with a contract and no Python."""

from __future__ import annotations

import shutil
import textwrap

import pandas as pd
import pytest
import sqlalchemy as sa

from care_etl.pipeline import run_pipeline
from care_etl.sources.csv_reader import read_csv
from care_etl_tests.conftest import CONTRACTS_DIR

pytestmark = pytest.mark.slow

SCHOOL_CONTRACT = textwrap.dedent(
    """\
    apiVersion: v3.1.0
    kind: DataContract
    id: education_school_roll
    name: School roll
    version: 0.1.0
    status: draft
    description:
      purpose: Know which children are on a school roll.
      usage: Linked to the person index.
      limitations: Pupils only.
    servers:
      - server: school_drop
        type: local
        format: csv
        path: education/roll_*.csv
    schema:
      - name: pupil
        properties:
          - name: UPN
            logicalType: string
            primaryKey: true
            required: true
            classification: internal
          - name: Pupil Surname
            logicalType: string
            classification: personal
            customProperties: [{property: canonical, value: family_name}]
          - name: Pupil Forename
            logicalType: string
            classification: personal
            customProperties: [{property: canonical, value: given_name}]
          - name: Birth Date
            logicalType: date
            logicalTypeOptions: {format: "%Y%m%d"}
            classification: personal
            customProperties: [{property: canonical, value: date_of_birth}]
          - name: Home Postcode
            logicalType: string
            classification: personal
            customProperties: [{property: canonical, value: postcode}]
    customProperties:
      - property: lawfulBasis
        value: Art 6(1)(e) public task
    """
)


def test_a_csv_source_added_by_contract_alone_reaches_the_index(generated, tmp_path):
    sources = tmp_path / "sources"
    shutil.copytree(generated, sources)
    contracts = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, contracts)
    (contracts / "education_school_roll.yaml").write_text(SCHOOL_CONTRACT, encoding="utf-8")

    # Pupils: the first GP patients of one practice, written in the school's own layout.
    practice = sorted((sources / "health").glob("*.csv"))[0]
    patients = read_csv(practice)
    patients = patients[patients["NHS Number"].notna()].head(20)
    roll = pd.DataFrame(
        {
            "UPN": [f"A{9000 + i}" for i in range(len(patients))],
            "Pupil Surname": patients["Surname"].str.upper().to_numpy(),
            "Pupil Forename": patients["Forename"].to_numpy(),
            "Birth Date": pd.to_datetime(patients["Date of Birth"], format="%d/%m/%Y")
            .dt.strftime("%Y%m%d")
            .to_numpy(),
            "Home Postcode": patients["Postcode"].to_numpy(),
        }
    )
    (sources / "education").mkdir()
    roll.to_csv(sources / "education" / "roll_2026.csv", index=False)

    url = f"sqlite:///{tmp_path / 'index.db'}"
    figures = run_pipeline(sources, contracts, url, tmp_path / "reports").figures
    school = figures["sources"]["education_school_roll"]
    assert school["records_read"] == len(roll)
    assert school["records_linked"] + school["records_quarantined"] == len(roll)

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        links = pd.read_sql_table("person_source_link", conn)
    engine.dispose()
    pupils = links[links["source"] == "education_school_roll"]
    health_ids = {
        f"{practice_code}:{pid}"
        for practice_code, pid in zip(
            patients["Practice Code"], patients["Patient ID"], strict=True
        )
    }
    health = links[links["source_record_id"].isin(health_ids)]
    shared = set(pupils["person_id"]) & set(health["person_id"])
    # Most pupils are found as the same person as their GP record.
    assert len(shared) >= 0.8 * len(roll)
