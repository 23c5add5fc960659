# Kafka: MSK with three brokers (one per zone), TLS between clients and brokers and
# between brokers, SASL/SCRAM for clients (librdkafka's SCRAM-SHA-512, the prod overlay's
# METRIFY_KAFKA_SASL_*), at-rest encryption with the data key, and the durability
# settings Metrify's effectively-once promise needs (three copies, two in sync).

resource "aws_security_group" "kafka" {
  name        = "${local.name}-kafka"
  description = "Kafka (SASL/SCRAM over TLS) from the EKS nodes only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "kafka_from_nodes" {
  security_group_id            = aws_security_group.kafka.id
  description                  = "Kafka SASL_SSL from EKS nodes and pods"
  referenced_security_group_id = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
}

resource "aws_msk_configuration" "main" {
  name           = local.name
  kafka_versions = [var.kafka_version]

  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    num.partitions=12
    unclean.leader.election.enable=false
    log.retention.hours=168
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "kafka" {
  name              = "/aws/msk/${local.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_msk_cluster" "main" {
  cluster_name           = local.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = 3

  broker_node_group_info {
    instance_type   = var.kafka_instance_type
    client_subnets  = aws_subnet.private[*].id
    security_groups = [aws_security_group.kafka.id]
    storage_info {
      ebs_storage_info {
        volume_size = 1000
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.main.arn
    revision = aws_msk_configuration.main.latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.data.arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      scram = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.kafka.name
      }
    }
  }
}

# The clients' SCRAM credentials: MSK reads them from a secret whose name starts with
# AmazonMSK_ and that is encrypted with a customer-managed key.
resource "random_password" "kafka" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "kafka" {
  name       = "AmazonMSK_${local.name}"
  kms_key_id = aws_kms_key.data.arn
  # checkov:skip=CKV2_AWS_57:SCRAM credentials are rotated by a new secret version and a rolling restart of the workers; MSK offers no rotation function
}

resource "aws_secretsmanager_secret_version" "kafka" {
  secret_id = aws_secretsmanager_secret.kafka.id
  secret_string = jsonencode({
    username = "metrify"
    password = random_password.kafka.result
  })
}

resource "aws_msk_single_scram_secret_association" "kafka" {
  cluster_arn = aws_msk_cluster.main.arn
  secret_arn  = aws_secretsmanager_secret.kafka.arn
  depends_on  = [aws_secretsmanager_secret_version.kafka]
}

# MSK may read the secret with the data key
data "aws_iam_policy_document" "kafka_secret" {
  statement {
    sid       = "MskReadsScramSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.kafka.arn]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "kafka" {
  secret_arn = aws_secretsmanager_secret.kafka.arn
  policy     = data.aws_iam_policy_document.kafka_secret.json
}
