from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "loupe.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from loupe.accounts import lockout

        def count_failure(sender, credentials, request=None, **kwargs):
            # Django sends this for every failed password sign-in, whichever form asked.
            attempt = lockout.LoginAttempt.of(request=request, username=credentials.get("username"))
            if attempt is not None:
                lockout.login_failure_record(attempt=attempt)

        user_login_failed.connect(count_failure, dispatch_uid="loupe-login-lockout", weak=False)
