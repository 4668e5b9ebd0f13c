terraform {
  # The module needs Terraform 1.3 features (lifecycle preconditions,
  # one(), nonsensitive()); 1.5 is a conservative floor. Formatted with 1.11.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.40 brings security groups on network load balancers and the
      # per-rule aws_vpc_security_group_*_rule resources; the module avoids
      # the attributes that provider 6 deprecated, so both majors work.
      version = ">= 5.40, < 7.0"
    }
  }
}
