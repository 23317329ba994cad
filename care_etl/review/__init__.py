"""Human review of uncertain pairs: the model informs, a person decides, the decision holds.

`store` keeps decisions (append-only, audited) and each record's last standardised values
and fingerprint; `apply` hands the still-valid decisions to linkage on every run and queues
again those whose records have changed; `cli` and `show` are the caseworker's commands.
"""
