"""Points this service's suite at real PostgreSQL, Redis and RabbitMQ on localhost (see servicekit.testing)."""

from servicekit.testing import configure_test_environment

configure_test_environment(project="vote_service", database_env="VOTE_DATABASE_URL", database="votes")

# Callers and hermetic settings every service suite shares (after configure_test_environment: they need Django).
pytest_plugins = ["servicekit.testing_fixtures"]
