"""The ingest handler a team would write in Python instead: Stripe's SDK
checks the signature, Powertools for AWS Lambda's idempotency utility
records the event once in DynamoDB, boto3 sends it to SQS. The comparison
point of the cold-start benchmark; it counts the AWS calls it makes and
returns the count with its answer."""

import json
import os

import boto3
import stripe
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

CALLS = {"count": 0}


def _count(**_):
    CALLS["count"] += 1


session = boto3.session.Session()
session.events.register("before-call.*.*", _count)
persistence = DynamoDBPersistenceLayer(
    table_name=os.environ["IDEMPOTENCY_TABLE"], boto3_client=session.client("dynamodb")
)
config = IdempotencyConfig(event_key_jmespath="id")
sqs = session.client("sqs")
QUEUE_URL = os.environ["PAYHOOKS_QUEUE_URL"]
SECRET = os.environ["STRIPE_WEBHOOK_SECRET"]


@idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)
def record(event):
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps({"provider": "stripe", "event_id": event["id"]}))
    return {"status": "accepted"}


def lambda_handler(request, context):
    config.register_lambda_context(context)
    before = CALLS["count"]
    headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
    try:
        event = stripe.Webhook.construct_event(request.get("body") or "", headers.get("stripe-signature", ""), SECRET)
    except (ValueError, stripe.SignatureVerificationError):
        return {"statusCode": 401, "body": json.dumps({"error": "invalid_signature"})}
    result = record(event=event.to_dict())
    return {"statusCode": 200, "body": json.dumps(result), "aws_calls": CALLS["count"] - before}
