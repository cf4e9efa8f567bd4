"""Typed S3 event records, from S3, SNS or EventBridge; an SQS poller for worker services and a handler for
Lambda functions fed by SQS."""

from .lambda_handler import sqs_lambda_handler
from .models import S3EventRecord
from .parse import parse_s3_event
from .poller import Handler, S3EventPoller

__all__ = ["Handler", "S3EventPoller", "S3EventRecord", "parse_s3_event", "sqs_lambda_handler"]
