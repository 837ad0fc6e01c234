"""Portable, verifiable learning records: Open Badges 3.0 and CLR 2.0 credentials.

``contexts`` (the pinned JSON-LD contexts and the loader that serves only them),
``proof`` (eddsa-rdfc-2022 signing and checking), ``issuer`` (the key file, DID,
profile and DID document), ``build`` (events -> unsigned credentials, pure),
``issue`` (reading the store, signing, exporting) and ``verify`` (our verifier).
"""
