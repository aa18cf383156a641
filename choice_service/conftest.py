"""Points this service's suite at real PostgreSQL, Redis and RabbitMQ on localhost (see servicekit.testing)."""

from servicekit.testing import configure_test_environment

configure_test_environment(project="choice_service", database_env="CHOICE_DATABASE_URL", database="choices")

# Callers and hermetic settings every service suite shares (after configure_test_environment: they need Django).
pytest_plugins = ["servicekit.testing_fixtures"]
