"""Cloud adapters: the only place cloud SDKs (boto3, google-*) are imported, and lazily."""
