output "bucket_id" {
  description = "Name of the bucket (the value for AWS_S3_BUCKET_NAME)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "bucket_region" {
  description = "Region the bucket lives in."
  value       = aws_s3_bucket.this.region
}

output "bucket_regional_domain_name" {
  description = "Regional domain name of the bucket, e.g. for presigned URLs used by browsers."
  value       = aws_s3_bucket.this.bucket_regional_domain_name
}

output "kms_key_arn" {
  description = "KMS key used for default encryption, or null when the bucket uses SSE-S3."
  value       = var.kms_key_arn
}
