"""Builds each function's live collaborators from settings: the only place that does.

One module per function, and each imports only what its function uses, so that a cold start pays
for nothing else (tests/unit/test_cold_import.py checks which modules each function imports, and
bench/cold_import.py times them):

- `api`: the API's resolver (store, runs, schedules, webhook secrets, notification settings);
- `runs`: the run service of the executor, and the guard's, which only halts runs;
- `notifications`: the notifier, and the API's notification settings;
- `auth`: the authorizer's token verifier.

AWS clients come from one `clients.Clients` per function, each made on its first use and shared;
fault families are imported and built on first use too (`families`). Nothing here makes an AWS
call. boto3/botocore pick up AWS_ENDPOINT_URL by themselves, which is how the same code talks to
the embedded AWS.
"""
