variable "bucket_name" {
  description = "Name of the bucket (globally unique, 3-63 characters: lower-case letters, digits, dots and hyphens)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !strcontains(var.bucket_name, "..")
    error_message = "bucket_name must be 3-63 characters of a-z, 0-9, '.' and '-', start and end with a letter or digit, and contain no '..'."
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the bucket even when it still holds objects (all their data is lost)."
  type        = bool
  default     = false
  nullable    = false
}

variable "versioning_enabled" {
  description = "Keep previous versions of overwritten and deleted objects. When false, versioning is suspended."
  type        = bool
  default     = true
  nullable    = false
}

variable "noncurrent_version_retention_days" {
  description = "Days a previous (noncurrent) object version is kept before it expires."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.noncurrent_version_retention_days >= 1 && floor(var.noncurrent_version_retention_days) == var.noncurrent_version_retention_days
    error_message = "noncurrent_version_retention_days must be a whole number of days, at least 1."
  }
}

variable "kms_key_arn" {
  description = "ARN of a KMS key for default encryption (SSE-KMS with an S3 bucket key). null uses SSE-S3 (AES256)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), or null."
  }
}

variable "uploads_prefix" {
  description = "Key prefix of uploaded objects; objects under it expire after retention_days."
  type        = string
  default     = "uploads/"
  nullable    = false

  validation {
    condition     = length(var.uploads_prefix) > 0 && !startswith(var.uploads_prefix, "/")
    error_message = "uploads_prefix must be non-empty (an empty prefix would expire every object in the bucket) and must not start with '/'."
  }
}

variable "retention_days" {
  description = "Days after which objects under uploads_prefix expire."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.retention_days >= 1 && floor(var.retention_days) == var.retention_days
    error_message = "retention_days must be a whole number of days, at least 1."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which multipart uploads that were never completed nor aborted are aborted, freeing their parts."
  type        = number
  default     = 7
  nullable    = false

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1 && floor(var.abort_incomplete_multipart_days) == var.abort_incomplete_multipart_days
    error_message = "abort_incomplete_multipart_days must be a whole number of days, at least 1."
  }
}

variable "cors_allowed_origins" {
  description = "Browser origins (e.g. https://app.example.com) allowed to use presigned URLs. Empty: no CORS configuration."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for origin in var.cors_allowed_origins : can(regex("^(\\*|https?://[^/\\s]+)$", origin))])
    error_message = "Each CORS origin must be '*' or scheme://host[:port] without a path or trailing slash."
  }
}

variable "cors_max_age_seconds" {
  description = "How long browsers may cache the answer to a CORS preflight request."
  type        = number
  default     = 3000
  nullable    = false

  validation {
    condition     = var.cors_max_age_seconds >= 0
    error_message = "cors_max_age_seconds must not be negative."
  }
}

variable "source_policy_documents" {
  description = "Extra bucket policy documents (JSON) merged into the bucket policy; a bucket has a single policy."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for document in var.source_policy_documents : can(jsondecode(document))])
    error_message = "Each entry of source_policy_documents must be a JSON policy document."
  }
}

variable "tags" {
  description = "Tags applied to the bucket."
  type        = map(string)
  default     = {}
  nullable    = false
}
