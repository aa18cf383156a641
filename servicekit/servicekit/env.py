"""The one reader of the environment: every setting that differs between machines is read through ``env``.

It is django-environ's ``Env`` (typed reads with defaults), shared by servicekit and every service::

    from servicekit.env import env              # inside servicekit
    from servicekit.settings import env         # a service's settings module (the same object)

    timeout = env.float("EVENTS_RETRY_BACKOFF", default=1.0)

Nothing in servicekit reads ``os.environ`` for configuration; a ``.env`` file at the repository root is
loaded into the environment by ``servicekit.settings.load_dotenv`` before the first read.
"""

from __future__ import annotations

import environ

env = environ.Env()
