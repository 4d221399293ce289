"""Environment for the test run, set before Django reads its settings (loaded as a plugin: ``-p tests.environment``
in pytest.ini) and inherited by the servers and workers tests start: distributed mode needs a secret key, and the
tests' fake OpenAI upstreams listen on this machine."""
import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", f"test-only-{secrets.token_urlsafe(32)}")
os.environ.setdefault("COE_UPSTREAM_ALLOWED_HOSTS", "127.0.0.1,localhost,::1")
# Servers the tests start in this process must not sweep in the background: tests run the reconciler themselves.
os.environ.setdefault("COE_EMBEDDED_RECONCILER", "0")
