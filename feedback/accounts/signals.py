from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from feedback.models import Volunteer


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def volunteer_for_new_user(sender, instance, created, **kwargs):
    """Every account can rank: give it a Volunteer profile as it is created."""
    if created:
        Volunteer.objects.get_or_create(user=instance)
