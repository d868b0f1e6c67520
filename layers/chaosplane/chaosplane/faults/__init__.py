"""The fault catalogue: which fault acts on which target type, with which parameters.

Adding a fault: write its family module (resolve/inject/rollback), add its `FaultType`, and add
one `FaultSpec` line below. The API, the run and the OpenAPI document pick it up from here.
"""
