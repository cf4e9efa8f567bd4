variable "function_name" {
  description = "Name of the Lambda function; its execution role and log group are named after it."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name must be 1-64 characters of letters, digits, '-' and '_'."
  }
}

variable "zip_path" {
  description = "Path of the deployment package: a zip holding the handler's module, aiostorage and its dependencies."
  type        = string
  nullable    = false

  validation {
    condition     = endswith(var.zip_path, ".zip")
    error_message = "zip_path must be the path of a .zip file."
  }
}

variable "handler" {
  description = "The function's entry point as module.attribute, e.g. \"lambda_worker.handler\" (a sqs_lambda_handler(...) value)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)+$", var.handler))
    error_message = "handler must be module.attribute, e.g. lambda_worker.handler."
  }
}

variable "runtime" {
  description = "Python runtime of the function; aiostorage needs Python 3.11 or later."
  type        = string
  default     = "python3.12"
  nullable    = false

  validation {
    condition     = can(regex("^python3\\.(1[1-9]|[2-9][0-9])$", var.runtime))
    error_message = "runtime must be python3.11 or later."
  }
}

variable "architecture" {
  description = "Instruction set of the function; the zip's compiled dependencies (aiohttp, pydantic-core) must match it."
  type        = string
  default     = "x86_64"
  nullable    = false

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "timeout" {
  description = "Function timeout in seconds (1-900). Handlers still running about a second before it are cancelled and their messages reported failed."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds from 1 to 900."
  }
}

variable "memory_size" {
  description = "Memory of the function in MiB (128-10240); CPU and network bandwidth grow with it."
  type        = number
  default     = 512
  nullable    = false

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MiB from 128 to 10240."
  }
}

variable "environment" {
  description = "Environment variables of the function, e.g. { AWS_S3_BUCKET_NAME = \"media\" }. Lambda sets the region and credentials itself."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for name in keys(var.environment) : !contains(["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"], name) && !startswith(name, "AWS_LAMBDA_")])
    error_message = "environment must not set the variables Lambda reserves (AWS_REGION, credentials, AWS_LAMBDA_*)."
  }
}

variable "queue_arn" {
  description = "ARN of the queue S3 notifies (the s3-sqs-notifications module's queue_arn)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$", var.queue_arn))
    error_message = "queue_arn must be the ARN of one standard queue (arn:aws:sqs:<region>:<account>:<name>)."
  }
}

variable "queue_visibility_timeout_seconds" {
  description = "The queue's visibility timeout (the s3-sqs-notifications module's visibility_timeout_seconds); it must be at least 6 x timeout + maximum_batching_window_in_seconds."
  type        = number
  nullable    = false

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 0 && var.queue_visibility_timeout_seconds <= 43200
    error_message = "queue_visibility_timeout_seconds must be from 0 to 43200 (12 hours)."
  }
}

variable "worker_policy_arn" {
  description = "ARN of the worker policy (the worker-iam module's policy_arn) attached to the execution role: objects and keys."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/.+$", var.worker_policy_arn))
    error_message = "worker_policy_arn must be the ARN of a customer managed IAM policy."
  }
}

variable "batch_size" {
  description = "Most messages per invocation (1-10000); over 10 needs maximum_batching_window_in_seconds of at least 1."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long Lambda gathers messages before invoking with fewer than batch_size (0-300); 0 invokes at once."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300 && floor(var.maximum_batching_window_in_seconds) == var.maximum_batching_window_in_seconds
    error_message = "maximum_batching_window_in_seconds must be a whole number from 0 to 300."
  }
}

variable "maximum_concurrency" {
  description = "Most concurrent invocations the queue drives (2-1000): caps the load on S3 and what the function costs."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number from 2 to 1000."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for the function (0 disables it); -1: none reserved, it shares the account's pool."
  type        = number
  default     = -1
  nullable    = false

  validation {
    condition     = var.reserved_concurrent_executions >= -1 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "reserved_concurrent_executions must be -1 or a whole number of at least 0."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: Active (sampled traces; the role gets AWSXRayDaemonWriteAccess) or PassThrough."
  type        = string
  default     = "Active"
  nullable    = false

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "kms_key_arn" {
  description = "KMS key encrypting the function's environment variables at rest; null: an AWS managed key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN or null."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key encrypting the log group (its key policy must allow the logs service); null: CloudWatch Logs' own encryption."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 365
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs offers (1, 3, 5, 7, 14, 30, ... 365, ... 3653)."
  }
}

variable "tags" {
  description = "Tags applied to the function, its role and its log group."
  type        = map(string)
  default     = {}
  nullable    = false
}
