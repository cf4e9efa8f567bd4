output "queue_url" {
  description = "URL of the main queue (the value for AWS_SQS_QUEUE_URL)."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "ARN of the main queue."
  value       = aws_sqs_queue.this.arn
}

output "queue_name" {
  description = "Name of the main queue."
  value       = aws_sqs_queue.this.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting both queues, or null when they use SQS-managed encryption."
  value       = var.kms_key_arn
}

output "notification_ids" {
  description = "Ids of the bucket's queue notification configurations, one per suffix."
  value       = [for suffix in local.suffixes : "${var.queue_name}${suffix}"]
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the main queue (a Lambda consumer's timeout must fit six times in it)."
  value       = aws_sqs_queue.this.visibility_timeout_seconds
}
