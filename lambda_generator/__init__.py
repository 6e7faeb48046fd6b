"""lambda_generator."""
