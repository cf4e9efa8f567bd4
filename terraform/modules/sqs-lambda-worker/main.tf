data "aws_partition" "current" {}

locals {
  # Lambda writes to this group by name; creating it here sets its retention and lets the role's log
  # statement name it rather than every group.
  log_group_name = "/aws/lambda/${var.function_name}"
}

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = var.tags
}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.function_name
  description        = "Execution role of the ${var.function_name} Lambda worker."
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# What the event source mapping and the function's logs need, beyond the worker policy (objects, keys).
data "aws_iam_policy_document" "execution" {
  statement {
    sid    = "ReadTheQueue"
    effect = "Allow"
    # The mapping polls with the function's role: it receives, deletes what succeeded and reads the
    # queue's attributes (visibility timeout) when it is created.
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
    ]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "WriteLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "queue-and-logs"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.execution.json
}

resource "aws_iam_role_policy_attachment" "worker" {
  role       = aws_iam_role.this.name
  policy_arn = var.worker_policy_arn
}

resource "aws_iam_role_policy_attachment" "tracing" {
  count = var.tracing_mode == "Active" ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

resource "aws_lambda_function" "this" {
  function_name                  = var.function_name
  description                    = "aiostorage worker: S3 events from ${var.queue_arn}."
  role                           = aws_iam_role.this.arn
  filename                       = var.zip_path
  source_code_hash               = filebase64sha256(var.zip_path)
  handler                        = var.handler
  runtime                        = var.runtime
  architectures                  = [var.architecture]
  timeout                        = var.timeout
  memory_size                    = var.memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  dynamic "environment" {
    for_each = length(var.environment) > 0 ? [var.environment] : []

    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = var.tracing_mode
  }

  # The log group first, or Lambda creates it (without retention) on the first invocation.
  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.execution,
    aws_iam_role_policy_attachment.worker,
  ]
}

resource "aws_lambda_event_source_mapping" "this" {
  event_source_arn                   = var.queue_arn
  function_name                      = aws_lambda_function.this.arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_in_seconds
  # The function returns the failed message ids (aiostorage's sqs_lambda_handler does): only those come
  # back, instead of the whole batch.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  lifecycle {
    # AWS's guidance for SQS event sources: a visibility timeout of at least six times the function's
    # timeout (plus the batching window), so a batch retried after throttling is not delivered twice.
    precondition {
      condition     = var.queue_visibility_timeout_seconds >= 6 * var.timeout + var.maximum_batching_window_in_seconds
      error_message = "The queue's visibility timeout must be at least 6 x timeout + maximum_batching_window_in_seconds: raise it on the queue or lower the function's timeout."
    }

    precondition {
      condition     = var.batch_size <= 10 || var.maximum_batching_window_in_seconds >= 1
      error_message = "A batch_size over 10 needs maximum_batching_window_in_seconds of at least 1."
    }
  }

  # The mapping checks, when it is created, that the role can read the queue.
  depends_on = [aws_iam_role_policy.execution]
}
