# A three-broker Tiercel cluster in an existing VPC: one i4i.large per
# availability zone, fixed node ids 1-3, replication factor 3 with two
# in-sync replicas required for acks=all.

module "tiercel" {
  source = "../.."

  name       = "tiercel-demo"
  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids

  deployment_mode = "fixed"
  broker_count    = 3
  instance_type   = "i4i.large"

  allowed_client_cidrs  = var.client_cidrs
  metrics_allowed_cidrs = var.monitoring_cidrs

  tiercel_binary_url    = var.tiercel_binary_url
  tiercel_binary_sha256 = var.tiercel_binary_sha256

  broker_overrides = {
    "default.replication.factor" = "3"
    "min.insync.replicas"        = "2"
  }

  tags = {
    environment = "demo"
  }
}
