variable "region" {
  description = "AWS region of every resource"
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Name of the environment (prod, staging); part of every resource name"
  type        = string
  default     = "prod"
}

variable "availability_zones" {
  description = "The three zones of the region the subnets, brokers and databases spread over"
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "Give exactly three availability zones."
  }
}

variable "vpc_cidr" {
  description = "The VPC's address range (the prod Kubernetes overlay's NetworkPolicies name it)"
  type        = string
  default     = "10.40.0.0/16"
}

variable "eks_version" {
  description = "Kubernetes version of the EKS control plane"
  type        = string
  default     = "1.33"
}

variable "eks_public_access_cidrs" {
  description = "Addresses allowed to reach the EKS API endpoint from outside the VPC (empty: private only)"
  type        = list(string)
  default     = []
}

variable "node_instance_types" {
  description = "EC2 types of the EKS managed node group"
  type        = list(string)
  default     = ["m7i.xlarge"]
}

variable "node_count" {
  description = "Minimum, desired and maximum nodes of the group"
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 3, desired = 3, max = 12 }
}

variable "db_instance_class" {
  description = "RDS class of the primary and the read replica"
  type        = string
  default     = "db.r7g.xlarge"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage of the primary (grows up to four times this on its own)"
  type        = number
  default     = 200
}

variable "kafka_instance_type" {
  description = "MSK broker type"
  type        = string
  default     = "kafka.m7g.large"
}

variable "kafka_version" {
  description = "Apache Kafka version of MSK"
  type        = string
  default     = "3.9.x"
}

variable "redis_node_type" {
  description = "ElastiCache node type"
  type        = string
  default     = "cache.r7g.large"
}

variable "lake_noncurrent_days" {
  description = "Days a replaced or deleted lake object version is kept before it expires"
  type        = number
  default     = 30
}

variable "lake_infrequent_access_days" {
  description = "Days after which lake objects move to S3 Standard-IA"
  type        = number
  default     = 90
}

variable "lake_glacier_days" {
  description = "Days after which lake objects move to Glacier Instant Retrieval"
  type        = number
  default     = 365
}

variable "log_retention_days" {
  description = "CloudWatch retention of VPC flow logs and service logs"
  type        = number
  default     = 365
}

variable "k8s_namespace" {
  description = "Namespace of Metrify's pods (deploy/k8s/overlays/prod)"
  type        = string
  default     = "metrify"
}

variable "k8s_service_account" {
  description = "Service account of Metrify's pods (deploy/k8s/base/serviceaccount.yaml)"
  type        = string
  default     = "metrify"
}
