"""The domain: values, coordinates, opening hours and the clock, in pure Python.

Every layer imports this package and it imports none of them (no `bot`, `storage` or `handlers`, no
database, network or web framework): `lint-imports` checks it.
"""
