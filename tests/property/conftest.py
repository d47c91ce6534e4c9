"""Hypothesis profiles for the property-based tests.

``ci`` (the default) keeps a full run of ``tests/property`` to well under a minute on a
shared 2-core machine; ``long`` tries many more examples. Choose one with
``--hypothesis-profile=long`` or ``WSCLIENT_HYPOTHESIS_PROFILE=long``.
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

# --hypothesis-profile (hypothesis' own pytest option) wins over the environment.
if not any(arg.startswith("--hypothesis-profile") for arg in sys.argv):
    settings.load_profile(os.environ.get("WSCLIENT_HYPOTHESIS_PROFILE", "ci"))
