# Customer-managed keys, rotated yearly: one for the lake, one for everything else at rest
# (RDS, MSK, ElastiCache, Secrets Manager, EKS secrets, CloudWatch logs). The key policies
# name their actions (no kms:*): the account's administrators manage and use the keys
# through IAM, CloudWatch Logs encrypts the log groups of this account.

locals {
  kms_admin_actions = [
    "kms:CancelKeyDeletion",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:DisableKeyRotation",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateKeyDescription",
  ]
}

data "aws_iam_policy_document" "kms_data" {
  # checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; the actions are named, and only this account's IAM principals (and CloudWatch Logs for its log groups) are given them
  # checkov:skip=CKV_AWS_356:in a key policy "*" can only mean the key the policy is attached to
  statement {
    sid       = "AccountAdministration"
    actions   = local.kms_admin_actions
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name}: RDS, MSK, ElastiCache, Secrets Manager, EKS secrets, logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_data.json
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

data "aws_iam_policy_document" "kms_lake" {
  # checkov:skip=CKV_AWS_111:a key policy's resource "*" is the key itself; the actions are named, and only this account's IAM principals (and CloudWatch Logs for its log groups) are given them
  # checkov:skip=CKV_AWS_356:in a key policy "*" can only mean the key the policy is attached to
  statement {
    sid       = "AccountAdministration"
    actions   = local.kms_admin_actions
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "lake" {
  description             = "${local.name}: the S3 lake (SSE-KMS with bucket keys)"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_lake.json
}

resource "aws_kms_alias" "lake" {
  name          = "alias/${local.name}-lake"
  target_key_id = aws_kms_key.lake.key_id
}
