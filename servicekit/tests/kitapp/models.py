from django.db import models


class Tally(models.Model):
    """What the test handlers change: one counter per key."""

    key = models.CharField(max_length=100, unique=True)
    count = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}={self.count}"
