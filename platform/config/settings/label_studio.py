"""Label Studio: the annotation server Loupe drives through label-studio-sdk."""

from config.env import env

LABEL_STUDIO_URL = env.str("LABEL_STUDIO_URL", default="http://127.0.0.1:8080")
# The demo's token and webhook secret: public values, which production settings refuse.
DEMO_LABEL_STUDIO_API_TOKEN = "loupe-demo-token-0123456789"
DEMO_LABEL_STUDIO_WEBHOOK_SECRET = "loupe-webhook-secret"
# Loupe's own user in Label Studio; `scripts/labelstudio.sh start` creates it with this token.
LABEL_STUDIO_API_TOKEN = env.str("LABEL_STUDIO_API_TOKEN", default=DEMO_LABEL_STUDIO_API_TOKEN)
LABEL_STUDIO_WEBHOOK_SECRET = env.str(
    "LABEL_STUDIO_WEBHOOK_SECRET", default=DEMO_LABEL_STUDIO_WEBHOOK_SECRET
)
# The address people's browsers use for Label Studio (deep links), when it differs.
LABEL_STUDIO_PUBLIC_URL = env.str("LABEL_STUDIO_PUBLIC_URL", default="")
# Where Label Studio sees Loupe's media folder (local-files storage), when it differs.
LABEL_STUDIO_MEDIA_ROOT = env.str("LABEL_STUDIO_MEDIA_ROOT", default="")
LABEL_STUDIO_TIMEOUT = env.float("LABEL_STUDIO_TIMEOUT", default=30.0)
LABEL_STUDIO_MAX_RETRIES = env.int("LABEL_STUDIO_MAX_RETRIES", default=1)
# How Label Studio reaches Loupe's webhook endpoint.
LOUPE_PUBLIC_URL = env.str("LOUPE_PUBLIC_URL", default="http://127.0.0.1:8000")
