"""The credential-endpoint budgets (``servicekit.throttling``) each environment starts with.

Django-free, so settings can read it while they load::

    from servicekit.throttle_rates import DEVELOPMENT_THROTTLE_RATES, THROTTLE_RATE_VARIABLES
    rate = os.environ.get(THROTTLE_RATE_VARIABLES["login.ip"]) or DEVELOPMENT_THROTTLE_RATES["login.ip"]

``servicekit.settings.auth_settings`` resolves ``SERVICEKIT["THROTTLE_RATES"]`` from these: each scope's
environment variable, else the default of the environment (``DJANGO_ENV``).
"""

from __future__ import annotations

# Environment variable of each credential-endpoint budget.
THROTTLE_RATE_VARIABLES = {
    "login.ip": "LOGIN_RATE_PER_IP",
    "login.username": "LOGIN_RATE_PER_USERNAME",
    "register.ip": "REGISTER_RATE_PER_IP",
    "register.username": "REGISTER_RATE_PER_USERNAME",
}
# Production defaults are strict. Development (make up, the test stack) is looser per username (test
# suites log the operator in often) and lets one machine, where every browser tab and test comes from
# 127.0.0.1, register and log in a lot.
PRODUCTION_THROTTLE_RATES = {
    "login.ip": "100/min",
    "login.username": "10/min",
    "register.ip": "30/hour",
    "register.username": "10/min",
}
DEVELOPMENT_THROTTLE_RATES = {
    "login.ip": "1000/min",
    "login.username": "30/min",
    "register.ip": "300/min",
    "register.username": "30/min",
}
