# What deploy/k8s/overlays/prod and the secrets in AWS Secrets Manager need.

output "lake_url" {
  description = "METRIFY_LAKE_URL"
  value       = "s3://${aws_s3_bucket.lake.bucket}/lake"
}

output "kafka_bootstrap_servers" {
  description = "METRIFY_KAFKA_BOOTSTRAP_SERVERS (SASL/SCRAM over TLS)"
  value       = aws_msk_cluster.main.bootstrap_brokers_sasl_scram
}

output "kafka_credentials_secret" {
  description = "Secrets Manager secret with the SCRAM user and password (METRIFY_KAFKA_SASL_*)"
  value       = aws_secretsmanager_secret.kafka.name
}

output "database_primary_endpoint" {
  description = "host:port of the primary (METRIFY_DATABASE_URL, with sslmode=verify-full)"
  value       = aws_db_instance.primary.endpoint
}

output "database_replica_endpoint" {
  description = "host:port of the read replica"
  value       = aws_db_instance.replica.endpoint
}

output "database_owner_secret_arn" {
  description = "Secrets Manager secret of the schema owner's password (managed by RDS)"
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "redis_endpoint" {
  description = "primary endpoint of Redis (METRIFY_API__REDIS_URL=rediss://:TOKEN@HOST:6379/0)"
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "eks_cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)"
  value       = aws_eks_cluster.main.name
}

output "app_role_arn" {
  description = "IAM role of the metrify service account (eks.amazonaws.com/role-arn)"
  value       = aws_iam_role.app.arn
}

output "external_secrets_role_arn" {
  description = "IAM role of the External Secrets Operator's service account"
  value       = aws_iam_role.external_secrets.arn
}
