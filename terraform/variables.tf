# Inputs of the Tiercel module. Validation rules only reference their own
# variable, so they work on every Terraform from 1.5 on; rules that relate
# two variables are preconditions next to the resource they protect.

# ---------------------------------------------------------------- naming

variable "name" {
  description = "Name of the cluster. Prefixes every resource name and the generated bucket name, and is the Name tag of the brokers."
  type        = string
  default     = "tiercel"

  validation {
    # Lower case because it becomes part of an S3 bucket name; 24 characters
    # leave room for the suffixes that resource names add.
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters of lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates (and propagated to the broker instances and their volumes)."
  type        = map(string)
  default     = {}
}

# ------------------------------------------------------------------ network

variable "vpc_id" {
  description = "ID of the VPC the brokers run in."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the brokers, ideally one per availability zone. Brokers are spread over them round-robin (fixed mode) or by the auto-scaling group; each subnet's AZ becomes the broker's rack."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids needs at least one subnet ID of the form subnet-0123456789abcdef0."
  }

  validation {
    condition     = length(distinct(var.subnet_ids)) == length(var.subnet_ids)
    error_message = "subnet_ids must not name a subnet twice."
  }
}

variable "allowed_client_cidrs" {
  description = "IPv4 CIDR blocks of Kafka clients allowed to reach the Kafka port. The brokers can always reach each other."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_client_cidrs : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "allowed_client_cidrs must hold IPv4 CIDR blocks such as 10.0.0.0/16."
  }
}

variable "metrics_allowed_cidrs" {
  description = "IPv4 CIDR blocks allowed to scrape the brokers' metrics port (Prometheus /metrics, /healthz, /readyz)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.metrics_allowed_cidrs : can(cidrhost(c, 0)) && can(regex("^[0-9.]+/[0-9]+$", c))])
    error_message = "metrics_allowed_cidrs must hold IPv4 CIDR blocks such as 10.0.0.0/16."
  }
}

variable "kafka_port" {
  description = "TCP port of the Kafka listener on every broker."
  type        = number
  default     = 9092

  validation {
    # Unprivileged ports only: the broker runs as a system user without
    # CAP_NET_BIND_SERVICE.
    condition     = var.kafka_port >= 1024 && var.kafka_port <= 65535 && floor(var.kafka_port) == var.kafka_port
    error_message = "kafka_port must be an integer in 1024-65535."
  }
}

variable "gossip_port" {
  description = "TCP and UDP port of the gossip (memberlist) listener, open only between brokers."
  type        = number
  default     = 7946

  validation {
    condition     = var.gossip_port >= 1024 && var.gossip_port <= 65535 && floor(var.gossip_port) == var.gossip_port
    error_message = "gossip_port must be an integer in 1024-65535."
  }
}

variable "metrics_port" {
  description = "TCP port of the metrics listener (Prometheus /metrics, /healthz, /readyz)."
  type        = number
  default     = 9644

  validation {
    condition     = var.metrics_port >= 1024 && var.metrics_port <= 65535 && floor(var.metrics_port) == var.metrics_port
    error_message = "metrics_port must be an integer in 1024-65535."
  }
}

# ----------------------------------------------------------------- storage

variable "bucket_name" {
  description = "Name of the S3 bucket to create for the cluster. Null generates a unique name starting with the cluster name."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 characters of lower-case letters, digits, '.' and '-'."
  }
}

variable "bucket_force_destroy" {
  description = "Let `terraform destroy` delete the bucket while it still holds objects. Off by default: the bucket holds the only copy of offloaded data."
  type        = bool
  default     = false
}

variable "prefix" {
  description = "Key prefix of the cluster inside the bucket (the PREFIX of --object-store s3://BUCKET/PREFIX). The IAM policy grants access under this prefix only."
  type        = string
  default     = "tiercel"

  validation {
    # No '*' or '?': they are IAM wildcards and would widen the policy. No
    # leading or trailing '/': the module adds the separators itself.
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be one or more '/'-separated segments of letters, digits, '.', '_' and '-', without a leading or trailing '/'."
  }
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which the bucket's lifecycle rule aborts multipart uploads that were never completed (a broker that died mid-upload leaves them behind)."
  type        = number
  default     = 2

  validation {
    condition     = var.abort_incomplete_multipart_days >= 1 && var.abort_incomplete_multipart_days <= 365 && floor(var.abort_incomplete_multipart_days) == var.abort_incomplete_multipart_days
    error_message = "abort_incomplete_multipart_days must be an integer in 1-365."
  }
}

variable "kms_key_arn" {
  description = "ARN of a KMS key for SSE-KMS. When set, it becomes the bucket's default encryption and the broker role may use it; null keeps SSE-S3."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases are not accepted because IAM policies cannot be scoped to them."
  }
}

# ----------------------------------------------------------------- brokers

variable "deployment_mode" {
  description = "How brokers are run: \"fixed\" creates broker_count instances with stable node ids and private IPs; \"autoscaling\" runs them in an auto-scaling group of that size behind an internal network load balancer (self-healing, node ids derived from private IPs)."
  type        = string
  default     = "fixed"

  validation {
    condition     = contains(["fixed", "autoscaling"], var.deployment_mode)
    error_message = "deployment_mode must be \"fixed\" or \"autoscaling\"."
  }
}

variable "broker_count" {
  description = "Number of brokers (the instance count in fixed mode; min, max and desired size of the auto-scaling group)."
  type        = number
  default     = 3

  validation {
    condition     = var.broker_count >= 1 && var.broker_count <= 100 && floor(var.broker_count) == var.broker_count
    error_message = "broker_count must be an integer in 1-100."
  }
}

variable "instance_type" {
  description = "EC2 instance type. Must have local NVMe instance storage, which holds the hot end of every partition: the i4i/i4g/i7i/i7ie/i8g/im4gn/is4gen/i3en families, or a 'd' variant such as m6id or c7gd."
  type        = string
  default     = "i4i.large"

  validation {
    condition     = can(regex("^(i3|i3en|i4i|i4g|i7i|i7ie|i8g|i8ge|im4gn|is4gen|[cmrxz][0-9]+[a-z]*d[a-z]*)\\.[0-9a-z]+$", var.instance_type))
    error_message = "instance_type must be a type with local NVMe instance storage (i4i, i4g, i7i, i7ie, i8g, i8ge, im4gn, is4gen, i3, i3en, or a 'd' family such as m6id, r7gd, c6id)."
  }
}

variable "ami_id" {
  description = "AMI for the brokers. Null uses the latest Amazon Linux 2023 for the instance type's architecture (read from the public SSM parameter). The user data needs bash, curl, systemd, xfsprogs and dnf (for mdadm)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume in GiB. Broker data lives on the instance-store NVMe, not here."
  type        = number
  default     = 20

  validation {
    condition     = var.root_volume_size_gb >= 8 && var.root_volume_size_gb <= 1024 && floor(var.root_volume_size_gb) == var.root_volume_size_gb
    error_message = "root_volume_size_gb must be an integer in 8-1024."
  }
}

variable "private_ip_host_offset" {
  description = "Fixed mode: broker N gets host number private_ip_host_offset + (N-1) / len(subnet_ids) in its subnet, so every broker's address (and the --join list) is known before any instance starts. Choose an offset whose addresses are free."
  type        = number
  default     = 10

  validation {
    # AWS reserves the first four addresses of every subnet.
    condition     = var.private_ip_host_offset >= 4 && floor(var.private_ip_host_offset) == var.private_ip_host_offset
    error_message = "private_ip_host_offset must be an integer >= 4 (AWS reserves the first four addresses of a subnet)."
  }
}

# ---------------------------------------------------------------- software

variable "tiercel_binary_url" {
  description = "HTTPS URL of the statically linked tiercel binary for the instance type's architecture (linux/amd64 or linux/arm64)."
  type        = string

  validation {
    condition     = can(regex("^https://[^[:space:]'\"]+$", var.tiercel_binary_url))
    error_message = "tiercel_binary_url must be an https:// URL without spaces or quotes."
  }
}

variable "tiercel_binary_sha256" {
  description = "SHA-256 of the binary at tiercel_binary_url, as 64 hex digits. The instance refuses to run a binary that does not match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.tiercel_binary_sha256))
    error_message = "tiercel_binary_sha256 must be 64 lower-case hex digits (the output of sha256sum)."
  }
}

variable "broker_overrides" {
  description = "Broker settings by their Kafka names, passed as --override KEY=VALUE (for example default.replication.factor = \"3\", min.insync.replicas = \"2\")."
  type        = map(string)
  default     = {}

  validation {
    # The values end up in a systemd ExecStart line; this character set
    # needs no quoting there or in the shell.
    condition = alltrue([
      for k, v in var.broker_overrides :
      can(regex("^[a-z][a-z0-9._-]*$", k)) && can(regex("^[A-Za-z0-9._,:/+=@-]*$", v))
    ])
    error_message = "broker_overrides keys must be Kafka setting names (lower case, '.', '_', '-') and values may only contain letters, digits and . _ , : / + = @ -."
  }
}

variable "log_level" {
  description = "Broker log level (--log-level). Logs are JSON, read with journalctl -u tiercel."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be one of debug, info, warn, error."
  }
}

variable "shutdown_timeout_seconds" {
  description = "How long systemd waits after SIGTERM for the broker's controlled shutdown (leadership hand-off, final flush) before it sends SIGKILL."
  type        = number
  default     = 120

  validation {
    condition     = var.shutdown_timeout_seconds >= 10 && var.shutdown_timeout_seconds <= 3600 && floor(var.shutdown_timeout_seconds) == var.shutdown_timeout_seconds
    error_message = "shutdown_timeout_seconds must be an integer in 10-3600."
  }
}
