variable "policy_name" {
  description = "Name of the IAM policy."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.policy_name))
    error_message = "policy_name must be 1-128 characters of letters, digits and +=,.@_-."
  }
}

variable "policy_path" {
  description = "Path of the IAM policy."
  type        = string
  default     = "/"
  nullable    = false

  validation {
    condition     = can(regex("^/([\\x21-\\x7E]*/)?$", var.policy_path))
    error_message = "policy_path must start and end with '/'."
  }
}

variable "bucket_arn" {
  description = "ARN of the bucket the worker reads and writes."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN (arn:aws:s3:::<bucket>), not an object ARN or a wildcard."
  }
}

variable "object_prefixes" {
  description = "Key prefixes the worker may use (e.g. [\"uploads/\", \"results/\"]); listing is limited to them too. Empty: the whole bucket."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for prefix in var.object_prefixes : length(prefix) > 0 && !strcontains(prefix, "*") && !strcontains(prefix, "?")])
    error_message = "object_prefixes must be non-empty literal prefixes without the wildcards '*' and '?'."
  }
}

variable "queue_arn" {
  description = "ARN of the queue the worker polls."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$", var.queue_arn))
    error_message = "queue_arn must be the ARN of one standard queue (arn:aws:sqs:<region>:<account>:<name>), without wildcards."
  }
}

variable "kms_key_arns" {
  description = "KMS keys encrypting the bucket and/or the queue; the worker gets kms:Decrypt and kms:GenerateDataKey on them. Empty: none."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for arn in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", arn))])
    error_message = "kms_key_arns must hold KMS key ARNs (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "role_name" {
  description = "Name of an existing IAM role to attach the policy to. null: the policy is only created."
  type        = string
  default     = null

  validation {
    condition     = var.role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be an IAM role name (not an ARN), or null."
  }
}

variable "uploads_prefix" {
  description = "Key prefix the uploader policy allows browser uploads to (the web app chooses keys under it)."
  type        = string
  default     = "uploads/"
  nullable    = false

  validation {
    condition     = length(var.uploads_prefix) > 0 && !strcontains(var.uploads_prefix, "*") && !strcontains(var.uploads_prefix, "?") && !startswith(var.uploads_prefix, "/")
    error_message = "uploads_prefix must be a non-empty literal prefix without '*' or '?' that does not start with '/'."
  }
}

variable "uploader_role_name" {
  description = "Name of an existing IAM role (the web app's) to attach the uploader policy to. null: the policy is only created."
  type        = string
  default     = null

  validation {
    condition     = var.uploader_role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.uploader_role_name))
    error_message = "uploader_role_name must be an IAM role name (not an ARN), or null."
  }
}

variable "tags" {
  description = "Tags applied to the policy."
  type        = map(string)
  default     = {}
  nullable    = false
}
