# Named after the aiostorage settings they feed: export AWS_S3_BUCKET_NAME="$(terraform output -raw aws_s3_bucket_name)".
output "aws_s3_bucket_name" {
  description = "Value for AWS_S3_BUCKET_NAME."
  value       = module.bucket.bucket_id
}

output "aws_sqs_queue_url" {
  description = "Value for AWS_SQS_QUEUE_URL."
  value       = module.notifications.queue_url
}

output "aws_region" {
  description = "Value for AWS_REGION."
  value       = var.region
}

output "environment" {
  description = "The three settings as environment variable name => value."
  value = {
    AWS_S3_BUCKET_NAME = module.bucket.bucket_id
    AWS_SQS_QUEUE_URL  = module.notifications.queue_url
    AWS_REGION         = var.region
  }
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = module.bucket.bucket_arn
}

output "queue_arn" {
  description = "ARN of the event queue."
  value       = module.notifications.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (inspect or redrive failed events from here)."
  value       = module.notifications.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = module.notifications.dlq_arn
}

output "worker_policy_arn" {
  description = "ARN of the worker's least-privilege policy."
  value       = module.worker_iam.policy_arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the bucket and the queues."
  value       = aws_kms_key.this.arn
}

output "lambda_function_name" {
  description = "Name of the Lambda worker, or null when lambda_worker is not set."
  value       = one(module.lambda_worker[*].function_name)
}
