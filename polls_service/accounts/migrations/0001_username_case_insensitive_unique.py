"""Usernames are unique regardless of case: a functional unique index on LOWER(username) of auth_user.

Django's own ``auth.User`` keeps its case-sensitive unique constraint; this index makes "Alice" and
"alice" collide in the database itself, so concurrent registrations cannot both succeed.
"""

from django.db import migrations

INDEX = "accounts_user_username_lower_uniq"


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(username))",
            reverse_sql=f"DROP INDEX {INDEX}",
        )
    ]
