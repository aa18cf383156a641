"""Points this service's suite at real PostgreSQL, Redis and RabbitMQ on localhost (see servicekit.testing)."""

from servicekit.testing import configure_test_environment

configure_test_environment(project="polls_service", database_env="POLLS_DATABASE_URL", database="polls")
