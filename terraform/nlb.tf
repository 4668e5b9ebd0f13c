# Autoscaling mode only. Instances of an auto-scaling group have addresses
# nobody knows in advance, so an internal network load balancer gives the
# cluster two stable names: the Kafka bootstrap address for clients (the
# Metadata response then points them at each broker's own --advertise
# address), and the gossip seed that a new broker joins through.

resource "aws_security_group" "nlb" {
  count = local.autoscaling ? 1 : 0

  name_prefix = "${var.name}-nlb-"
  description = "Load balancer in front of the Tiercel brokers of cluster ${var.name}"
  vpc_id      = var.vpc_id

  tags = merge(local.common_tags, {
    Name = "${var.name}-nlb"
  })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "nlb_kafka_from_clients" {
  for_each = toset(local.autoscaling ? var.allowed_client_cidrs : [])

  security_group_id = aws_security_group.nlb[0].id
  description       = "Kafka bootstrap for clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
}

resource "aws_vpc_security_group_ingress_rule" "nlb_from_brokers" {
  for_each = { for k, port in local.lb_ports : k => port if local.autoscaling && k != "metrics" }

  security_group_id            = aws_security_group.nlb[0].id
  description                  = "From the brokers (${each.key})"
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_brokers" {
  for_each = { for k, port in local.lb_ports : k => port if local.autoscaling }

  security_group_id            = aws_security_group.nlb[0].id
  description                  = "To the brokers (${each.key})"
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

resource "aws_lb" "brokers" {
  count = local.autoscaling ? 1 : 0

  name_prefix        = "tcl-"
  internal           = true
  load_balancer_type = "network"
  subnets            = var.subnet_ids
  security_groups    = [aws_security_group.nlb[0].id]

  # A joining broker must be able to reach a broker in another zone when its
  # own zone has no other broker yet.
  enable_cross_zone_load_balancing = true

  tags = merge(local.common_tags, {
    Name = "${var.name}-brokers"
  })
}

# Client IP preservation is off on both target groups: with it on, a broker
# that the load balancer routes back to itself (its own gossip join, or a
# co-located client) sees a packet from its own address and drops it.

resource "aws_lb_target_group" "kafka" {
  count = local.autoscaling ? 1 : 0

  name_prefix          = "tclk-"
  port                 = var.kafka_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  preserve_client_ip   = false
  deregistration_delay = 30

  # Ready means the log is recovered and the cluster metadata is known;
  # the same check decides when the auto-scaling group replaces a broker.
  health_check {
    protocol            = "HTTP"
    port                = tostring(var.metrics_port)
    path                = "/readyz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.common_tags
}

resource "aws_lb_target_group" "gossip" {
  count = local.autoscaling ? 1 : 0

  name_prefix          = "tclg-"
  port                 = var.gossip_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  preserve_client_ip   = false
  deregistration_delay = 30

  # Liveness, not readiness: a broker that is still recovering its log can
  # already let others join the cluster.
  health_check {
    protocol            = "HTTP"
    port                = tostring(var.metrics_port)
    path                = "/healthz"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = local.common_tags
}

resource "aws_lb_listener" "kafka" {
  count = local.autoscaling ? 1 : 0

  load_balancer_arn = aws_lb.brokers[0].arn
  port              = var.kafka_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.kafka[0].arn
  }
}

resource "aws_lb_listener" "gossip" {
  count = local.autoscaling ? 1 : 0

  load_balancer_arn = aws_lb.brokers[0].arn
  port              = var.gossip_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.gossip[0].arn
  }
}
