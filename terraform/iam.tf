# The brokers' role: the bucket, under the cluster's prefix, and nothing
# else. Everything the broker does in S3 is a Get (whole or ranged), a Put
# (single or multipart, with If-None-Match / If-Match for the lease and the
# metadata document), a Delete (retention, the sweeper) or a List under the
# prefix.

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "EC2AssumeRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.${data.aws_partition.current.dns_suffix}"]
    }
  }
}

resource "aws_iam_role" "broker" {
  name_prefix        = "${var.name}-broker-"
  description        = "Tiercel brokers of cluster ${var.name}: S3 access under ${var.prefix}/ only."
  assume_role_policy = data.aws_iam_policy_document.assume_role.json

  tags = local.common_tags
}

data "aws_iam_policy_document" "broker" {
  # Listing is granted on the bucket, but only for keys under the prefix:
  # without the condition the role could enumerate the whole bucket.
  statement {
    sid       = "ListClusterPrefix"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.prefix}/*"]
    }
  }

  statement {
    sid    = "ReadWriteClusterObjects"
    effect = "Allow"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}/*"]
  }

  # With SSE-KMS, S3 calls KMS on the caller's behalf: GenerateDataKey and
  # Encrypt for uploads, Decrypt for reads and to complete multipart uploads.
  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      sid    = "UseBucketKey"
      effect = "Allow"
      actions = [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
      ]
      resources = [statement.value]

      # Only when the request comes through S3, so the role cannot use the
      # key for anything else.
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${aws_s3_bucket.this.region}.${data.aws_partition.current.dns_suffix}"]
      }
    }
  }
}

resource "aws_iam_role_policy" "broker" {
  name   = "tiercel-object-store"
  role   = aws_iam_role.broker.id
  policy = data.aws_iam_policy_document.broker.json
}

resource "aws_iam_instance_profile" "broker" {
  name_prefix = "${var.name}-broker-"
  role        = aws_iam_role.broker.name

  tags = local.common_tags
}
