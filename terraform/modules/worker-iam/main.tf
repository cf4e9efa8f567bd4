locals {
  object_resources = (
    length(var.object_prefixes) > 0
    ? [for prefix in var.object_prefixes : "${var.bucket_arn}/${prefix}*"]
    : ["${var.bucket_arn}/*"]
  )
  uploads_resource = "${var.bucket_arn}/${var.uploads_prefix}*"
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

# The web app that hands browsers presigned URLs for direct uploads (presigned POST, presigned multipart):
# a presigned request carries the signer's permissions, so the app's role needs exactly what the browser
# does with them, on the uploads prefix only, and nothing else (no reads, no deletes, no queue).
data "aws_iam_policy_document" "uploader" {
  statement {
    sid    = "UploadObjects"
    effect = "Allow"
    actions = [
      # PutObject covers the presigned POST, and CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      # ListParts: what a resumed upload has already sent.
      "s3:ListMultipartUploadParts",
    ]
    resources = [local.uploads_resource]
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [var.kms_key_arns] : []

    content {
      sid    = "EncryptUploads"
      effect = "Allow"
      # A multipart upload to an SSE-KMS bucket needs Decrypt too: S3 decrypts the parts to assemble them.
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = statement.value
    }
  }
}

resource "aws_iam_policy" "uploader" {
  name        = "${var.policy_name}-uploader"
  path        = var.policy_path
  description = "aiostorage uploader: direct browser uploads to ${local.uploads_resource}."
  policy      = data.aws_iam_policy_document.uploader.json
  tags        = var.tags
}

resource "aws_iam_role_policy_attachment" "uploader" {
  count = var.uploader_role_name != null ? 1 : 0

  role       = var.uploader_role_name
  policy_arn = aws_iam_policy.uploader.arn
}
