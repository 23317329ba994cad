"""Short forms people go by: the generator writes them where a formal name is expected.

The table belongs to the linkage (care_etl/linkage/nicknames.py), which must know that Bill
and William are one forename; the generator reads the same data from there.
"""

from care_etl.linkage.nicknames import SHORT_FORMS, short_forms

__all__ = ["SHORT_FORMS", "short_forms"]
