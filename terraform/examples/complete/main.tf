data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # Built from the name, not the module output: the key must exist before the bucket that uses it.
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
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
        Condition = {
          ArnEquals    = { "aws:SourceArn" = local.bucket_arn }
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.bucket_name}"
  target_key_id = aws_kms_key.this.key_id
}

module "bucket" {
  source = "../../modules/s3-bucket"

  bucket_name          = var.bucket_name
  kms_key_arn          = aws_kms_key.this.arn
  cors_allowed_origins = var.cors_allowed_origins
}

module "notifications" {
  source = "../../modules/s3-sqs-notifications"

  bucket_id   = module.bucket.bucket_id
  bucket_arn  = module.bucket.bucket_arn
  queue_name  = var.queue_name
  kms_key_arn = aws_kms_key.this.arn
}

module "worker_iam" {
  source = "../../modules/worker-iam"

  policy_name     = "${var.queue_name}-worker"
  bucket_arn      = module.bucket.bucket_arn
  queue_arn       = module.notifications.queue_arn
  object_prefixes = ["uploads/", "results/"]
  kms_key_arns    = [aws_kms_key.this.arn]
  role_name       = var.worker_role_name
}
