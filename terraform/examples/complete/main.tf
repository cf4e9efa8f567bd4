data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
}

# One customer managed key for the bucket and both queues. S3 can only publish to an encrypted queue when
# the key policy lets s3.amazonaws.com use the key, which an AWS managed key (alias/aws/sqs) never does.
resource "aws_kms_key" "this" {
  description         = "aiostorage example: ${var.bucket_name} objects and ${var.queue_name} events"
  enable_key_rotation = true
  # A key policy: "Resource": "*" means this key. The account statement lets IAM policies (the worker's) grant use.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "S3EncryptsEventsForTheQueue"
        Effect    = "Allow"
        Principal = { Service = "s3.amazonaws.com" }
        Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
        Resource  = "*"
        # No condition, as AWS documents this statement: S3 reaches the key through SQS, and a condition that
        # such calls do not carry would drop every event without an error anywhere.
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  # Alias names allow no dots, bucket names do.
  name          = "alias/${replace(var.bucket_name, ".", "-")}"
  target_key_id = aws_kms_key.this.key_id
}

module "bucket" {
  source = "../../modules/s3-bucket"

  bucket_name          = var.bucket_name
  uploads_prefix       = var.uploads_prefix
  kms_key_arn          = aws_kms_key.this.arn
  cors_allowed_origins = var.cors_allowed_origins
}

module "notifications" {
  source = "../../modules/s3-sqs-notifications"

  bucket_id     = module.bucket.bucket_id
  bucket_arn    = module.bucket.bucket_arn
  queue_name    = var.queue_name
  filter_prefix = var.uploads_prefix
  kms_key_arn   = aws_kms_key.this.arn
}

module "worker_iam" {
  source = "../../modules/worker-iam"

  policy_name     = "${var.queue_name}-worker"
  bucket_arn      = module.bucket.bucket_arn
  queue_arn       = module.notifications.queue_arn
  # The worker reads uploads and writes results outside the notification prefix, so results raise no events.
  object_prefixes = [var.uploads_prefix, var.results_prefix]
  kms_key_arns    = [aws_kms_key.this.arn]
  role_name       = var.worker_role_name
}

# The worker as a Lambda function fed by the queue, instead of (or next to) a long-running service.
module "lambda_worker" {
  source = "../../modules/sqs-lambda-worker"
  count  = var.lambda_worker != null ? 1 : 0

  function_name                    = "${var.queue_name}-worker"
  zip_path                         = var.lambda_worker.zip_path
  handler                          = var.lambda_worker.handler
  timeout                          = var.lambda_worker.timeout
  queue_arn                        = module.notifications.queue_arn
  queue_visibility_timeout_seconds = module.notifications.visibility_timeout_seconds
  worker_policy_arn                = module.worker_iam.policy_arn
  # The worker policy grants kms:Decrypt on this key, which the function needs to read its environment.
  kms_key_arn = aws_kms_key.this.arn
  environment = { AWS_S3_BUCKET_NAME = module.bucket.bucket_id }
}
