# Tiercel on AWS: an S3 bucket for the cluster (s3.tf), a least-privilege
# role for the brokers (iam.tf), security groups (security_groups.tf), and
# the brokers themselves on NVMe instances (brokers.tf), optionally behind an
# internal network load balancer in autoscaling mode (nlb.tf).

data "aws_partition" "current" {}

data "aws_subnet" "broker" {
  for_each = toset(var.subnet_ids)
  id       = each.value
}

locals {
  autoscaling = var.deployment_mode == "autoscaling"

  # Graviton families carry a 'g' right after the generation digit (i4g,
  # im4gn, is4gen, c7gd); everything else the validation admits is x86.
  instance_family = split(".", var.instance_type)[0]
  architecture    = can(regex("^[a-z]+[0-9]+g", local.instance_family)) ? "arm64" : "x86_64"

  # Ports the autoscaling mode's load balancer forwards (kafka, gossip) or
  # health-checks (metrics).
  lb_ports = {
    kafka   = var.kafka_port
    gossip  = var.gossip_port
    metrics = var.metrics_port
  }

  common_tags = merge(var.tags, {
    "tiercel:cluster" = var.name
  })

  object_store_url = "s3://${aws_s3_bucket.this.bucket}/${var.prefix}"

  # Fixed mode: brokers 1..N, placed round-robin over the subnets, each at a
  # host number computed from the subnet's CIDR. Knowing every address at
  # plan time is what lets each broker's user data carry the --join list of
  # the others without a boot-time discovery call, and therefore without any
  # IAM permission beyond the bucket (EC2 Describe* calls cannot be scoped to
  # resources). The node id is the broker's position and survives the
  # replacement of its instance, as a Kafka broker.id should.
  #
  # Conditional maps are built with for-expressions over a possibly empty
  # range rather than `cond ? {...} : {}`, whose two object types Terraform
  # may refuse to unify.
  fixed_brokers = {
    for i in range(local.autoscaling ? 0 : var.broker_count) : tostring(i + 1) => {
      node_id   = i + 1
      subnet_id = var.subnet_ids[i % length(var.subnet_ids)]
      private_ip = cidrhost(
        data.aws_subnet.broker[var.subnet_ids[i % length(var.subnet_ids)]].cidr_block,
        var.private_ip_host_offset + floor(i / length(var.subnet_ids)),
      )
    }
  }

  # What each broker's user data differs in. Fixed mode: the broker's node
  # id and the gossip addresses of all the others. Autoscaling: one user data
  # for the whole group; the node id is derived from the private IP at boot
  # (see the template) and the seed is the load balancer's gossip listener,
  # which forwards the join to any running broker.
  autoscaling_keys = local.autoscaling ? ["autoscaling"] : []
  user_data_instances = merge(
    {
      for key in local.autoscaling_keys : key => {
        node_id = ""
        join    = "${one(aws_lb.brokers[*].dns_name)}:${var.gossip_port}"
      }
    },
    {
      for key, broker in local.fixed_brokers : key => {
        node_id = tostring(broker.node_id)
        join = join(",", [
          for other_key, other in local.fixed_brokers : "${other.private_ip}:${var.gossip_port}" if other_key != key
        ])
      }
    },
  )

  user_data = {
    for key, instance in local.user_data_instances : key => templatefile("${path.module}/templates/user-data.sh.tftpl", {
      node_id       = instance.node_id
      join          = instance.join
      bucket        = aws_s3_bucket.this.bucket
      prefix        = var.prefix
      region        = aws_s3_bucket.this.region
      kafka_port    = var.kafka_port
      gossip_port   = var.gossip_port
      metrics_port  = var.metrics_port
      binary_url    = var.tiercel_binary_url
      binary_sha256 = var.tiercel_binary_sha256
      overrides     = [for k in sort(keys(var.broker_overrides)) : "${k}=${var.broker_overrides[k]}"]
      log_level     = var.log_level
      stop_timeout  = var.shutdown_timeout_seconds
      mount_point   = "/var/lib/tiercel"
    })
  }
}
