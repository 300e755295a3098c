"""Conveyor's shared library: settings, tiers, ledger, blob store and broker wiring.

Imported by the gateway, the workers and the operator tools; imports none of them.
"""
