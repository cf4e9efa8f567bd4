locals {
  object_resources = (
    length(var.object_prefixes) > 0
    ? [for prefix in var.object_prefixes : "${var.bucket_arn}/${prefix}*"]
    : ["${var.bucket_arn}/*"]
  )
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid    = "ReadWriteObjects"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      # Downloads from a versioned bucket pin every ranged GET to one VersionId, which needs this action.
      "s3:GetObjectVersion",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = local.object_resources
  }

  statement {
    sid       = "ListBucket"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]

    dynamic "condition" {
      for_each = length(var.object_prefixes) > 0 ? [var.object_prefixes] : []

      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [for prefix in condition.value : "${prefix}*"]
      }
    }
  }

  statement {
    sid    = "ConsumeQueue"
    effect = "Allow"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [var.queue_arn]
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [var.kms_key_arns] : []

    content {
      sid       = "UseEncryptionKeys"
      effect    = "Allow"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = statement.value
    }
  }
}

resource "aws_iam_policy" "worker" {
  name        = var.policy_name
  path        = var.policy_path
  description = "aiostorage worker: objects in ${var.bucket_arn}, events from ${var.queue_arn}."
  policy      = data.aws_iam_policy_document.worker.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "worker" {
  count = var.role_name != null ? 1 : 0

  role       = var.role_name
  policy_arn = aws_iam_policy.worker.arn
}
