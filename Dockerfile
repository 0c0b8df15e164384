# Loupe's image: web, worker and beat run from it with different commands.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.django.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
# torch for the CPU; the GPU worker image sets TORCH_INDEX_URL to a CUDA wheel index.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0
COPY pyproject.toml README.md manage.py ./
COPY platform ./platform
COPY workers ./workers
COPY ml ./ml
COPY frontend ./frontend
COPY scripts/collectstatic.sh ./scripts/
# The suite runs these same steps (tests/test_production.py).
RUN pip install -e . && sh scripts/collectstatic.sh
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
