"""python manage.py loupe_label_studio_logins [username ...] — how each person signs in to
Label Studio (the Label Studio user Loupe made for them), one line each."""

from django.core.management.base import BaseCommand

from loupe.labeling.models import LabelStudioUser


class Command(BaseCommand):
    help = "Print the Label Studio login of each Loupe user who labels (or of the ones named)."

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*")

    def handle(self, *args, **options):
        links = LabelStudioUser.objects.select_related("user").order_by("user__username")
        if options["usernames"]:
            links = links.filter(user__username__in=options["usernames"])
        width = max((len(link.user.username) for link in links), default=0)
        for link in links:
            secret = link.password or "(their own Label Studio password)"
            self.stdout.write(f"{link.user.username:<{width}}  {link.email} / {secret}")
