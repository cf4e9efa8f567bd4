variable "bucket_id" {
  description = "Name of the bucket whose events are delivered. This module owns the bucket's whole notification configuration."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_id))
    error_message = "bucket_id must be an S3 bucket name."
  }
}

variable "bucket_arn" {
  description = "ARN of the same bucket; the queue accepts messages only from it (aws:SourceArn)."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_arn))
    error_message = "bucket_arn must be an S3 bucket ARN (arn:aws:s3:::<bucket>)."
  }
}

variable "bucket_owner_account_id" {
  description = "Account that owns the bucket (aws:SourceAccount in the queue policy). null: the account Terraform runs as."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_owner_account_id == null || can(regex("^[0-9]{12}$", var.bucket_owner_account_id))
    error_message = "bucket_owner_account_id must be a 12-digit AWS account id, or null."
  }
}

variable "queue_name" {
  description = "Name of the main queue; the dead-letter queue is named <queue_name>-dlq. Standard queues only: S3 cannot deliver to FIFO queues."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.queue_name))
    error_message = "queue_name must be 1-76 characters of letters, digits, '-' and '_' (76 leaves room for the '-dlq' suffix)."
  }

  validation {
    condition     = !endswith(var.queue_name, ".fifo")
    error_message = "FIFO queues are not supported: S3 event notifications cannot be delivered to a FIFO queue."
  }
}

variable "filter_prefix" {
  description = "Only objects whose key starts with this prefix send events. Empty: the whole bucket."
  type        = string
  default     = "uploads/"
  nullable    = false

  validation {
    condition     = length(var.filter_prefix) <= 1024
    error_message = "filter_prefix must be at most 1024 characters."
  }
}

variable "filter_suffixes" {
  description = "Key suffixes that send events, one notification configuration each (case-sensitive: add \".MP4\" too if needed). Empty: any key under the prefix."
  type        = list(string)
  default     = [".mp4", ".mov", ".avi", ".mkv"]
  nullable    = false

  validation {
    condition     = alltrue([for suffix in var.filter_suffixes : length(suffix) > 0])
    error_message = "filter_suffixes must not contain empty strings (use an empty list for any key)."
  }

  # S3 rejects configurations that overlap: same prefix, events and a suffix that ends another one.
  validation {
    condition = alltrue([
      for suffix in var.filter_suffixes : length([for other in var.filter_suffixes : other if endswith(other, suffix)]) == 1
    ])
    error_message = "filter_suffixes must be distinct and none may end another (e.g. \".mp4\" and \"4\"): S3 rejects overlapping configurations."
  }
}

variable "events" {
  description = "S3 event types delivered to the queue."
  type        = list(string)
  default     = ["s3:ObjectCreated:*"]
  nullable    = false

  validation {
    condition     = length(var.events) > 0 && alltrue([for event in var.events : can(regex("^s3:[A-Za-z]+(:(\\*|[A-Za-z]+))?$", event))])
    error_message = "events must be a non-empty list of S3 event types such as \"s3:ObjectCreated:*\" or \"s3:ObjectRemoved:Delete\"."
  }
}

variable "visibility_timeout_seconds" {
  description = "How long a received message stays hidden from other consumers; longer than the worker takes per message (the aiostorage poller extends it while a record is held)."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200 && floor(var.visibility_timeout_seconds) == var.visibility_timeout_seconds
    error_message = "visibility_timeout_seconds must be a whole number from 0 to 43200 (12 hours)."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-polling wait of ReceiveMessage; 20 (the maximum) means fewer empty, billed receives."
  type        = number
  default     = 20
  nullable    = false

  validation {
    condition     = var.receive_wait_time_seconds >= 0 && var.receive_wait_time_seconds <= 20 && floor(var.receive_wait_time_seconds) == var.receive_wait_time_seconds
    error_message = "receive_wait_time_seconds must be a whole number from 0 to 20."
  }
}

variable "message_retention_seconds" {
  description = "How long the main queue keeps a message that nobody deleted (default 4 days)."
  type        = number
  default     = 345600
  nullable    = false

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600 && floor(var.message_retention_seconds) == var.message_retention_seconds
    error_message = "message_retention_seconds must be a whole number from 60 to 1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long the dead-letter queue keeps a message (default and maximum 14 days). A moved message keeps its original enqueue time, so this should exceed message_retention_seconds."
  type        = number
  default     = 1209600
  nullable    = false

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600 && floor(var.dlq_message_retention_seconds) == var.dlq_message_retention_seconds
    error_message = "dlq_message_retention_seconds must be a whole number from 60 to 1209600 (14 days)."
  }
}

variable "max_receive_count" {
  description = "Receives of a message before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5
  nullable    = false

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 1 to 1000."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for both queues. Its key policy must let s3.amazonaws.com use kms:GenerateDataKey and kms:Decrypt. null: SQS-managed encryption (SSE-SQS). The AWS managed key alias/aws/sqs cannot work: S3 may not use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a customer managed KMS key (arn:aws:kms:<region>:<account>:key/<id>), or null."
  }
}

variable "kms_data_key_reuse_period_seconds" {
  description = "How long SQS reuses a data key before calling KMS again (only with kms_key_arn)."
  type        = number
  default     = 300
  nullable    = false

  validation {
    condition     = var.kms_data_key_reuse_period_seconds >= 60 && var.kms_data_key_reuse_period_seconds <= 86400
    error_message = "kms_data_key_reuse_period_seconds must be from 60 to 86400."
  }
}

variable "tags" {
  description = "Tags applied to both queues."
  type        = map(string)
  default     = {}
  nullable    = false
}
