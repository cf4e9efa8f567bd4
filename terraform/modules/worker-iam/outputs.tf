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
