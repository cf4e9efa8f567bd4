variable "region" {
  description = "AWS region of the bucket and the queues (the value for AWS_REGION)."
  type        = string
  default     = "us-east-1"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "bucket_name" {
  description = "Name of the bucket (globally unique)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of a-z, 0-9, '.' and '-'."
  }
}

variable "queue_name" {
  description = "Name of the event queue; the dead-letter queue is <queue_name>-dlq."
  type        = string
  default     = "media-events"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.queue_name))
    error_message = "queue_name must be 1-76 characters of letters, digits, '-' and '_' (no .fifo: S3 cannot deliver to FIFO queues)."
  }
}

variable "uploads_prefix" {
  description = "Key prefix of uploads: the notification filters on it and the lifecycle expires objects under it."
  type        = string
  default     = "uploads/"
  nullable    = false

  validation {
    condition     = length(var.uploads_prefix) > 0 && endswith(var.uploads_prefix, "/")
    error_message = "uploads_prefix must be a non-empty prefix ending in '/'."
  }
}

variable "results_prefix" {
  description = "Key prefix the worker writes its results under; outside uploads_prefix, so results raise no events."
  type        = string
  default     = "results/"
  nullable    = false

  validation {
    condition     = length(var.results_prefix) > 0 && endswith(var.results_prefix, "/")
    error_message = "results_prefix must be a non-empty prefix ending in '/'."
  }
}

variable "cors_allowed_origins" {
  description = "Browser origins allowed to upload and download with presigned URLs, e.g. [\"https://app.example.com\"]."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "worker_role_name" {
  description = "Existing IAM role of the worker (e.g. its ECS task role) to attach the policy to. null: only create the policy."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags applied to every resource through the provider's default_tags."
  type        = map(string)
  default     = { Project = "aiostorage-example" }
  nullable    = false
}

variable "lambda_worker" {
  description = "Deploy the worker as a Lambda function fed by the queue: its zip, handler and timeout (6 x timeout must fit in the queue's 300 s visibility timeout). null: no function."
  type = object({
    zip_path = string
    handler  = optional(string, "lambda_worker.handler")
    timeout  = optional(number, 30)
  })
  default = null
}
