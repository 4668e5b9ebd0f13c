output "bootstrap_servers" {
  description = "Kafka bootstrap servers, comma-separated host:port: every broker's private address in fixed mode, the internal load balancer in autoscaling mode."
  value = local.autoscaling ? "${one(aws_lb.brokers[*].dns_name)}:${var.kafka_port}" : join(",", [
    for key in sort(keys(local.fixed_brokers)) : "${local.fixed_brokers[key].private_ip}:${var.kafka_port}"
  ])
}

output "bucket_name" {
  description = "Name of the cluster's S3 bucket."
  value       = aws_s3_bucket.this.bucket
}

output "bucket_arn" {
  description = "ARN of the cluster's S3 bucket."
  value       = aws_s3_bucket.this.arn
}

output "object_store_url" {
  description = "The brokers' --object-store value, s3://BUCKET/PREFIX; `tiercel inspect` and `tiercel cost` take it too."
  value       = local.object_store_url
}

output "role_arn" {
  description = "ARN of the brokers' IAM role."
  value       = aws_iam_role.broker.arn
}

output "role_name" {
  description = "Name of the brokers' IAM role, for attaching further policies (for example AmazonSSMManagedInstanceCore for Session Manager access)."
  value       = aws_iam_role.broker.name
}

output "instance_profile_name" {
  description = "Name of the brokers' instance profile."
  value       = aws_iam_instance_profile.broker.name
}

output "security_group_id" {
  description = "ID of the brokers' security group; add rules to it for further client networks."
  value       = aws_security_group.broker.id
}

output "brokers" {
  description = "Fixed mode: node id => private IP of every broker (empty in autoscaling mode)."
  value       = { for key, broker in local.fixed_brokers : key => broker.private_ip }
}

output "autoscaling_group_name" {
  description = "Name of the brokers' auto-scaling group (null in fixed mode)."
  value       = one(aws_autoscaling_group.broker[*].name)
}

output "load_balancer_dns_name" {
  description = "DNS name of the internal network load balancer (null in fixed mode)."
  value       = one(aws_lb.brokers[*].dns_name)
}
