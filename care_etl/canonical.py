"""The canonical person model every source is mapped onto (see interfaces.md).

A staged record is one row of a DataFrame with these columns. Readers know formats, the
contracts know what columns mean, and standardisation knows people's data: this module is
the vocabulary the three share.
"""

#: Fields a contract may map a source column to, in the order of interfaces.md.
CANONICAL_FIELDS: tuple[str, ...] = (
    "nhs_number",
    "title",
    "given_name",
    "middle_names",
    "family_name",
    "full_name",
    "other_names",
    "date_of_birth",
    "sex",
    "address",
    "postcode",
    "uprn",
    "ni_number",
    "date_of_death",
)

#: Fields that are dates (datetime64[ns] once standardised, NaT when missing).
DATE_FIELDS: tuple[str, ...] = ("date_of_birth", "date_of_death")

#: Key columns every record carries from reading to the index.
KEY_COLUMNS: tuple[str, str] = ("source", "source_record_id")

#: Columns of a standardised record, besides the keys.
#: `full_name` is parsed into given and family names and then dropped.
STANDARDISED_FIELDS: tuple[str, ...] = tuple(f for f in CANONICAL_FIELDS if f != "full_name")

#: Extra columns that travel with each staged record.
#: quality_issues: '; '-separated reasons a value was nulled ("nhs_number: failed modulus 11").
#: ocr_confidence: 0..1 for records read by OCR, null otherwise.
#: lineage: where the record came from ("health/gp_registrations_F84001.csv row 12").
EXTRA_COLUMNS: tuple[str, ...] = ("dob_estimated", "quality_issues", "ocr_confidence", "lineage")

#: Sex codes after standardisation. Unknown or not recorded becomes null.
SEX_CODES: tuple[str, ...] = ("M", "F", "X")

#: Further fields a contract may map to, beyond interfaces.md's list: they travel with the
#: record (estimated birth dates, ethnicity for the bias report, the declared household role,
#: and, as raw text for the index's address periods and recency, the date the record's values
#: were stated and the period of its address; and the addresses the person has left).
EXTENDED_FIELDS: tuple[str, ...] = (
    "dob_estimated",
    "ethnicity",
    "relationship_to_head",
    "recorded_on",
    "address_from",
    "address_to",
    "previous_addresses",
)

#: The extended field holding a record's former addresses: a JSON list, most recent first,
#: of objects with any of `address`, `postcode`, `uprn`, `address_from`, `address_to`
#: (`[{"address": "12 HIGH STREET", "postcode": "E8 1AA", "uprn": "10001",
#: "address_to": "2021-03-01"}]`). A contract fills it from the rows of an address history
#: that are not the current address (a lookup's `historyAs`, see care_etl.sources.read);
#: linkage reads it to recognise a person who moved (care_etl.linkage.compare).
PREVIOUS_ADDRESSES = "previous_addresses"
#: The keys an entry of PREVIOUS_ADDRESSES may carry: canonical fields of one address row.
ADDRESS_HISTORY_KEYS: tuple[str, ...] = (
    "address",
    "postcode",
    "uprn",
    "address_from",
    "address_to",
)
