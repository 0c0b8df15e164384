"""Label Studio: the annotation server Loupe drives through label-studio-sdk."""

from config.env import env

LABEL_STUDIO_URL = env.str("LABEL_STUDIO_URL", default="http://127.0.0.1:8080")
# Loupe's own user in Label Studio; `scripts/labelstudio.sh start` creates it with this token.
LABEL_STUDIO_API_TOKEN = env.str("LABEL_STUDIO_API_TOKEN", default="loupe-demo-token-0123456789")
LABEL_STUDIO_WEBHOOK_SECRET = env.str("LABEL_STUDIO_WEBHOOK_SECRET", default="loupe-webhook-secret")
# How Label Studio reaches Loupe's webhook endpoint.
LOUPE_PUBLIC_URL = env.str("LOUPE_PUBLIC_URL", default="http://127.0.0.1:8000")
