from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "loupe.accounts"
    label = "accounts"
