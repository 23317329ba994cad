"""care_etl: one person index from a council's health, housing, social care and paper records."""

__version__ = "0.1.0"
