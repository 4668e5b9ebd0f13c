variable "region" {
  description = "AWS region to deploy into; the subnets must be in it."
  type        = string
  default     = "us-east-1"
}

variable "vpc_id" {
  description = "ID of an existing VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Existing private subnets of that VPC, one per availability zone (three for a three-rack cluster)."
  type        = list(string)
}

variable "client_cidrs" {
  description = "IPv4 CIDR blocks whose Kafka clients may connect, typically the VPC's own block."
  type        = list(string)
}

variable "monitoring_cidrs" {
  description = "IPv4 CIDR blocks of the Prometheus servers that scrape the brokers."
  type        = list(string)
  default     = []
}

variable "tiercel_binary_url" {
  description = "HTTPS URL of a linux/amd64 tiercel binary (i4i instances are x86)."
  type        = string
}

variable "tiercel_binary_sha256" {
  description = "SHA-256 of that binary (sha256sum output)."
  type        = string
}
