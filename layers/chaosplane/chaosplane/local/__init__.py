"""The embedded AWS: moto, our one small patch, and template.yaml deployed into it.

Nothing here runs in Lambda; it exists so the whole platform runs on a laptop with no AWS account,
with the same handlers, the same state machine and the same template.
"""
