# The cluster's bucket. Tiercel keeps its controller lease, its metadata
# document and every offloaded segment under var.prefix here, and does its own
# retention: no lifecycle rule may expire objects, or it would delete segments
# that a partition manifest still names.

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-" : null
  force_destroy = var.bucket_force_destroy

  tags = merge(local.common_tags, {
    Name = coalesce(var.bucket_name, "${var.name}-objects")
  })
}

# Versioning stays off. The lease is renewed every few seconds and the
# metadata document is rewritten on every change (both by compare-and-swap
# on the ETag, which needs no versioning); with versioning on, every one of
# those writes and every deleted segment would be kept as a billed,
# invisible noncurrent version.
resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs disabled: access is decided by IAM and the bucket policy only.
resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # An S3 bucket key turns one KMS request per object into one per bucket
    # key period: segment uploads and ranged reads would otherwise each cost
    # a KMS call.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # A broker that dies during a multipart upload of a segment leaves parts
  # behind that are billed but invisible to listings; the next leader
  # uploads the segment again under a new key, so the parts are never needed.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {
      prefix = "${var.prefix}/"
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }
}

# Refuse plain-HTTP requests from anyone: the brokers' SDK always uses TLS,
# so this only stops mistakes.
resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # S3 answers OperationAborted to concurrent changes of one bucket's
  # settings; putting the policy after the access block avoids the race.
  depends_on = [aws_s3_bucket_public_access_block.this]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
