"""Fixed ids and provider-state names shared by the consumer halves and the provider verification."""

P_OPEN = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a1"
P_MISSING = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a2"
C_1 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c111"
C_2 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c112"
C_MISSING = "6c1f0b8e-5a1d-4c3e-9f00-00000000c119"
OWNER = 7

POLL_OPEN = f"poll {P_OPEN} exists and is open"
POLL_MISSING = f"poll {P_MISSING} does not exist"
CHOICES_EXIST = f"poll {P_OPEN} has choices {C_1} and {C_2}"
CHOICE_MISSING = f"choice {C_MISSING} does not exist"

# Provider-side seeding, run with `manage.py shell -c` in the provider (its own models, no events).
SEED = {
    "polls": (
        "from django.utils import timezone\n"
        "from polls.models import Poll\n"
        f"Poll.objects.update_or_create(id='{P_OPEN}', defaults=dict(question='Contract poll', status='open',"
        f" owner_id={OWNER}, opened_at=timezone.now(), closes_at=None))\n"
        f"Poll.objects.filter(id='{P_MISSING}').delete()\n"
    ),
    "choices": (
        "from choices.models import Choice, PollReplica\n"
        f"PollReplica.objects.update_or_create(id='{P_OPEN}', defaults=dict(owner_id={OWNER}, status='open'))\n"
        f"Choice.objects.update_or_create(id='{C_1}', defaults=dict(poll_id='{P_OPEN}', text='Yes', position=0))\n"
        f"Choice.objects.update_or_create(id='{C_2}', defaults=dict(poll_id='{P_OPEN}', text='No', position=1))\n"
        f"Choice.objects.filter(id='{C_MISSING}').delete()\n"
    ),
}
