#!/bin/sh
# Collects the static files under production settings: the image build runs this, and so
# does the test suite (tests/test_production.py). Production settings refuse to load without
# secrets of their own; collectstatic reads none, so it gets random ones that live only for
# this command and never reach the image.
set -eu
cd "$(dirname "$0")/.."
throwaway() { python -c 'import secrets; print(secrets.token_hex(20))'; }
DJANGO_SETTINGS_MODULE=config.django.production \
DJANGO_SECRET_KEY="$(throwaway)$(throwaway)" \
LABEL_STUDIO_WEBHOOK_SECRET="$(throwaway)" \
LABEL_STUDIO_API_TOKEN="$(throwaway)" \
  python manage.py collectstatic --noinput -v0
