output "bootstrap_servers" {
  description = "Kafka bootstrap servers of the cluster (kcat -b ...)."
  value       = module.tiercel.bootstrap_servers
}

output "object_store_url" {
  description = "The cluster's s3://BUCKET/PREFIX."
  value       = module.tiercel.object_store_url
}

output "bucket_name" {
  description = "The cluster's bucket."
  value       = module.tiercel.bucket_name
}

output "role_arn" {
  description = "The brokers' IAM role."
  value       = module.tiercel.role_arn
}

output "security_group_id" {
  description = "The brokers' security group."
  value       = module.tiercel.security_group_id
}
