output "policy_arn" {
  description = "ARN of the worker policy."
  value       = aws_iam_policy.worker.arn
}

output "policy_name" {
  description = "Name of the worker policy."
  value       = aws_iam_policy.worker.name
}

output "policy_json" {
  description = "The worker policy document."
  value       = data.aws_iam_policy_document.worker.json
}

output "uploader_policy_arn" {
  description = "ARN of the uploader policy (the web app handing out presigned upload URLs)."
  value       = aws_iam_policy.uploader.arn
}

output "uploader_policy_name" {
  description = "Name of the uploader policy."
  value       = aws_iam_policy.uploader.name
}

output "uploader_policy_json" {
  description = "The uploader policy document."
  value       = data.aws_iam_policy_document.uploader.json
}
