# Metrify on AWS: a VPC over three zones, MSK (Kafka), RDS PostgreSQL with a read replica,
# the S3 lake (SSE-KMS, versioned, lifecycle), EKS for the API, workers and batch, and
# ElastiCache Redis; IAM grants each part only what it uses.
#
# Not applied from this repository's CI (terraform cannot be installed there): CI parses
# every file (python-hcl2) and scans it (checkov). Run `terraform init && terraform plan`
# with your own backend before the first apply.
terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.1"
    }
  }

  # Configure the state bucket of your organisation (encrypted, versioned, locked):
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "metrify/prod.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "metrify"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# exactly the zones named (a zone AWS adds later does not move subnets around)
data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = var.availability_zones
  }
}

locals {
  name       = "metrify-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, 3)
}
