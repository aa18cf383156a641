"""Fixed ids and provider-state names shared by the consumer halves and the provider verification."""

P_OPEN = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a1"
P_MISSING = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a2"
C_1 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c111"
C_2 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c112"
C_MISSING = "6c1f0b8e-5a1d-4c3e-9f00-00000000c119"
# Gates: a draft with two choices (freeze), a draft with one (refused), the ledger's two votes.
P_DRAFT = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a3"
P_ONE = "6c1f0b8e-5a1d-4c3e-9f00-00000000c0a4"
C_3 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c113"
C_4 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c114"
C_5 = "6c1f0b8e-5a1d-4c3e-9f00-00000000c115"
V_1 = "6c1f0b8e-5a1d-4c3e-9f00-00000000e001"
V_2 = "6c1f0b8e-5a1d-4c3e-9f00-00000000e002"
OWNER = 7
# Voters of the ledger state: ids no registered user of the shared test stack can have (polls_service
# numbers users from 1), so their votes never show up in a real user's list (the walkthrough's).
VOTER_1, VOTER_2 = 2_000_000_042, 2_000_000_043

POLL_OPEN = f"poll {P_OPEN} exists and is open"
POLL_MISSING = f"poll {P_MISSING} does not exist"
CHOICES_EXIST = f"poll {P_OPEN} has choices {C_1} and {C_2}"
CHOICE_MISSING = f"choice {C_MISSING} does not exist"
DRAFT_TWO_CHOICES = f"poll {P_DRAFT} is a draft (version 1) with choices {C_3} and {C_4}"
DRAFT_ONE_CHOICE = f"poll {P_ONE} is a draft (version 1) with one choice {C_5}"
VOTES_OPEN = f"poll {P_OPEN} is open in vote_service (version 1)"
LEDGER_TWO_VOTES = f"poll {P_OPEN} has votes {V_1} ({C_1}) and {V_2} ({C_2}) in the ledger"

# Provider-side seeding, run with `manage.py shell -c` in the provider before each interaction (its
# own models, no events; upserts, so a gate command an interaction sent is undone for the next one).
SEED = {
    "polls": (
        "from django.utils import timezone\n"
        "from polls.models import Poll\n"
        f"Poll.objects.update_or_create(id='{P_OPEN}', defaults=dict(question='Contract poll', status='open',"
        f" owner_id={OWNER}, opened_at=timezone.now(), closes_at=None, version=3))\n"
        f"Poll.objects.filter(id='{P_MISSING}').delete()\n"
    ),
    "choices": (
        "from choices.models import Choice, PollReplica\n"
        f"PollReplica.objects.update_or_create(id='{P_OPEN}', defaults=dict(owner_id={OWNER}, status='open',"
        " closes_at=None, version=3))\n"
        f"Choice.objects.update_or_create(id='{C_1}', defaults=dict(poll_id='{P_OPEN}', text='Yes', position=0))\n"
        f"Choice.objects.update_or_create(id='{C_2}', defaults=dict(poll_id='{P_OPEN}', text='No', position=1))\n"
        f"Choice.objects.filter(id='{C_MISSING}').delete()\n"
        f"PollReplica.objects.update_or_create(id='{P_DRAFT}', defaults=dict(owner_id={OWNER}, status='draft',"
        " closes_at=None, version=1))\n"
        f"Choice.objects.update_or_create(id='{C_3}', defaults=dict(poll_id='{P_DRAFT}', text='Tea', position=0))\n"
        f"Choice.objects.update_or_create(id='{C_4}', defaults=dict(poll_id='{P_DRAFT}', text='Coffee', position=1))\n"
        f"PollReplica.objects.update_or_create(id='{P_ONE}', defaults=dict(owner_id={OWNER}, status='draft',"
        " closes_at=None, version=1))\n"
        f"Choice.objects.filter(poll_id='{P_ONE}').exclude(id='{C_5}').delete()\n"
        f"Choice.objects.update_or_create(id='{C_5}', defaults=dict(poll_id='{P_ONE}', text='Alone', position=0))\n"
    ),
    "votes": (
        "from votes.models import PollReplica, Vote\n"
        f"PollReplica.objects.update_or_create(id='{P_OPEN}', defaults=dict(owner_id={OWNER}, status='open',"
        " closes_at=None, version=1))\n"
        f"Vote.objects.filter(poll_id='{P_OPEN}').exclude(id__in=['{V_1}', '{V_2}']).delete()\n"
        f"Vote.objects.update_or_create(id='{V_1}', defaults=dict(poll_id='{P_OPEN}', choice_id='{C_1}',"
        f" voter_id={VOTER_1}, version=1))\n"
        f"Vote.objects.update_or_create(id='{V_2}', defaults=dict(poll_id='{P_OPEN}', choice_id='{C_2}',"
        f" voter_id={VOTER_2}, version=2))\n"
        "from votes.results import results_invalidate\n"
        f"results_invalidate(poll_id='{P_OPEN}')\n"
    ),
}
