data "aws_caller_identity" "current" {}

locals {
  bucket_owner_account_id = coalesce(var.bucket_owner_account_id, data.aws_caller_identity.current.account_id)
  use_kms                 = var.kms_key_arn != null
  # No suffix means one configuration for every key under the prefix.
  suffixes = length(var.filter_suffixes) > 0 ? var.filter_suffixes : [""]
}

resource "aws_sqs_queue" "dlq" {
  name       = "${var.queue_name}-dlq"
  fifo_queue = false

  message_retention_seconds         = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  tags = var.tags
}

resource "aws_sqs_queue" "this" {
  name       = var.queue_name
  fifo_queue = false

  visibility_timeout_seconds        = var.visibility_timeout_seconds
  receive_wait_time_seconds         = var.receive_wait_time_seconds
  message_retention_seconds         = var.message_retention_seconds
  sqs_managed_sse_enabled           = local.use_kms ? null : true
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.use_kms ? var.kms_data_key_reuse_period_seconds : null

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })

  tags = var.tags
}

# A separate resource: inline on the DLQ it would reference the main queue, which already references the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "AllowS3BucketNotifications"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    # Both conditions: the bucket ARN alone would match a bucket of that name re-created in another account.
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.bucket_owner_account_id]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

resource "aws_s3_bucket_notification" "this" {
  bucket = var.bucket_id

  dynamic "queue" {
    for_each = local.suffixes

    content {
      id            = "${var.queue_name}${queue.value}"
      queue_arn     = aws_sqs_queue.this.arn
      events        = var.events
      filter_prefix = var.filter_prefix != "" ? var.filter_prefix : null
      filter_suffix = queue.value != "" ? queue.value : null
    }
  }

  # S3 sends a test event to validate the destination when the configuration is saved; without the policy
  # in place first the apply fails with "Unable to validate the following destination configurations".
  depends_on = [aws_sqs_queue_policy.this]
}
