"""The faults: each one a registered `Fault` in `catalogue.py`, acting through its family (one module
per kind of resource), with its parameters in `parameters.py`.

Adding a fault: add its `FaultType`, its parameters model, its family's change and undo, and
register it in the catalogue (README: "Adding a fault"). The API, the run and the OpenAPI document
pick it up from there.
"""
