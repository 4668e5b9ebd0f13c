# The brokers: one launch template, used either by broker_count standalone
# instances (fixed mode) or by an auto-scaling group (autoscaling mode).

# A public parameter holding a plain AMI id: insecure_value reads it without
# the sensitive marking that value always carries.
data "aws_ssm_parameter" "al2023" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${local.architecture}"
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ssm_parameter.al2023[0].insecure_value
}

resource "aws_launch_template" "broker" {
  name_prefix   = "${var.name}-broker-"
  description   = "Tiercel broker of cluster ${var.name}"
  image_id      = local.ami_id
  instance_type = var.instance_type

  # Autoscaling instances all get this user data. Fixed-mode instances set
  # their own (below), which carries their node id and peers.
  user_data = local.autoscaling ? base64encode(local.user_data["autoscaling"]) : null

  vpc_security_group_ids = [aws_security_group.broker.id]

  iam_instance_profile {
    arn = aws_iam_instance_profile.broker.arn
  }

  # IMDSv2 only, and a hop limit of 1 so that nothing but the host itself
  # (no container) can fetch the role's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  # The root volume holds the OS and the binary only; partitions live on the
  # instance-store NVMe, which the user data mounts.
  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags = merge(local.common_tags, {
      Name = "${var.name}-broker"
    })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = local.common_tags
  }

  tags = local.common_tags
}

# ------------------------------------------------------------ fixed mode

resource "aws_instance" "broker" {
  for_each = local.fixed_brokers

  subnet_id  = each.value.subnet_id
  private_ip = each.value.private_ip
  user_data  = local.user_data[each.key]

  launch_template {
    id      = aws_launch_template.broker.id
    version = aws_launch_template.broker.latest_version
  }

  # Repeated from the launch template so that the provider does not read a
  # difference into the instance's defaults.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = merge(local.common_tags, {
    Name                = "${var.name}-broker-${each.key}"
    "tiercel:node-id"   = tostring(each.value.node_id)
    "tiercel:advertise" = "${each.value.private_ip}:${var.kafka_port}"
  })

  lifecycle {
    # A new AMI, binary or setting must not make one apply replace every
    # broker at once: their NVMe holds the not-yet-offloaded data. Roll
    # brokers one at a time instead, waiting for under-replicated
    # partitions to reach zero in between:
    #   terraform apply -replace='module.tiercel.aws_instance.broker["2"]'
    ignore_changes = [launch_template, user_data, ami]
  }
}

# ------------------------------------------------------ autoscaling mode

resource "aws_autoscaling_group" "broker" {
  count = local.autoscaling ? 1 : 0

  name_prefix = "${var.name}-broker-"

  # A Kafka cluster does not scale with load: adding a broker moves no
  # partitions by itself. The group is fixed-size and exists to replace a
  # broker that fails.
  min_size         = var.broker_count
  max_size         = var.broker_count
  desired_capacity = var.broker_count

  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = [aws_lb_target_group.kafka[0].arn, aws_lb_target_group.gossip[0].arn]

  # Replace brokers that the load balancer sees as not ready (/readyz),
  # after they have had time to install and recover.
  health_check_type         = "ELB"
  health_check_grace_period = 600

  # Time for a new broker to install, join and catch up before its metrics
  # count in the group's figures.
  default_instance_warmup = 300

  launch_template {
    id      = aws_launch_template.broker.id
    version = aws_launch_template.broker.latest_version
  }

  # A changed launch template rolls through the group one broker at a time
  # (100% minimum healthy means one replacement at a time), each waiting
  # for the new broker to be ready before the next is replaced.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      instance_warmup        = 300
    }
  }

  dynamic "tag" {
    for_each = merge(local.common_tags, { Name = "${var.name}-broker" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
