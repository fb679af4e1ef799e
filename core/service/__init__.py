"""The serverless build service: upload events in, images and completion events out.

`events` turns every delivery shape (S3 records, SNS, SQS, EventBridge, GCS CloudEvents,
Pub/Sub notifications) into `BuildRequest`s; `settings` resolves what to build from object
metadata, `bucketbuild.json` and the environment; `claim` makes one upload give one result;
`result` writes CloudEvents; `runner` sequences them. The handlers in `handlers/` only adapt
their platform to `runner.handle_request`.
"""
