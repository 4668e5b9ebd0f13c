# One security group for the brokers. Kafka is open to the client CIDRs and
# to the brokers themselves (replication is ordinary Fetch traffic), gossip
# only between brokers, metrics to the monitoring CIDRs. In autoscaling mode
# the load balancer's own group is let in on Kafka, gossip and the health
# check. Rules are separate resources so that adding a CIDR touches one rule
# and never briefly empties the group.

resource "aws_security_group" "broker" {
  name_prefix = "${var.name}-broker-"
  description = "Tiercel brokers of cluster ${var.name}"
  vpc_id      = var.vpc_id

  tags = merge(local.common_tags, {
    Name = "${var.name}-broker"
  })

  lifecycle {
    # Replacing a group that instances use must create the new one first.
    create_before_destroy = true

    precondition {
      condition     = length(distinct([var.kafka_port, var.gossip_port, var.metrics_port])) == 3
      error_message = "kafka_port, gossip_port and metrics_port must be three different ports."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "kafka_from_clients" {
  for_each = toset(var.allowed_client_cidrs)

  security_group_id = aws_security_group.broker.id
  description       = "Kafka clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
}

resource "aws_vpc_security_group_ingress_rule" "kafka_from_brokers" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Kafka between brokers (replication, forwarding)"
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
}

# memberlist uses both: UDP for probes and gossip, TCP for joins, state
# push/pull and large messages.
resource "aws_vpc_security_group_ingress_rule" "gossip_from_brokers" {
  for_each = toset(["tcp", "udp"])

  security_group_id            = aws_security_group.broker.id
  description                  = "Gossip between brokers (${each.value})"
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = each.value
  from_port                    = var.gossip_port
  to_port                      = var.gossip_port
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each = toset(var.metrics_allowed_cidrs)

  security_group_id = aws_security_group.broker.id
  description       = "Prometheus scrapes and health checks"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.metrics_port
  to_port           = var.metrics_port
}

# Load balancer to brokers (autoscaling mode): Kafka bootstrap, gossip
# joins, and the /readyz health check on the metrics port.
resource "aws_vpc_security_group_ingress_rule" "from_nlb" {
  for_each = { for k, port in local.lb_ports : k => port if local.autoscaling }

  security_group_id            = aws_security_group.broker.id
  description                  = "From the brokers' load balancer (${each.key})"
  referenced_security_group_id = aws_security_group.nlb[0].id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

# Egress: HTTPS anywhere (S3, the binary download, the OS package
# repository for mdadm) and everything to the other brokers. DNS, NTP and
# the instance metadata service are link-local and not subject to groups.
resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.broker.id
  description       = "HTTPS: S3, binary download, OS packages"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "to_brokers" {
  security_group_id            = aws_security_group.broker.id
  description                  = "Kafka and gossip to the other brokers"
  referenced_security_group_id = aws_security_group.broker.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "gossip_to_nlb" {
  count = local.autoscaling ? 1 : 0

  security_group_id            = aws_security_group.broker.id
  description                  = "Gossip join through the load balancer"
  referenced_security_group_id = aws_security_group.nlb[0].id
  ip_protocol                  = "tcp"
  from_port                    = var.gossip_port
  to_port                      = var.gossip_port
}
